// The floor under order latency with the journal fsynced: how long one append of a group
// commit's size followed by fdatasync takes on this machine's disk, with nothing else running.
//   gcc -O2 -o /tmp/fsc bench/fsync_cost.c && /tmp/fsc /path/on/the/data/disk 2000 4096
// Prints the latency percentiles of write + fdatasync over N appends of SIZE bytes.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}
int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  int n = argc > 2 ? atoi(argv[2]) : 2000, size = argc > 3 ? atoi(argv[3]) : 4096;
  char path[4096];
  snprintf(path, sizeof path, "%s/fsync-cost.%d", dir, getpid());
  int fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC, 0600);
  if (fd < 0) { perror("open"); return 1; }
  char *buf = malloc(size); memset(buf, 'x', size);
  double *ms = malloc(n * sizeof(double));
  for (int i = 0; i < n; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (write(fd, buf, size) != size || fdatasync(fd)) { perror("write/fdatasync"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms[i] = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  }
  close(fd); unlink(path);
  qsort(ms, n, sizeof(double), cmp);
  double sum = 0; for (int i = 0; i < n; i++) sum += ms[i];
  printf("%d appends of %d bytes + fdatasync: mean %.3f ms, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n",
         n, size, sum / n, ms[n / 2], ms[n * 90 / 100], ms[n * 99 / 100], ms[n * 999 / 1000], ms[n - 1]);
  return 0;
}
