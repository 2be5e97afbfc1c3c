// The floor under WebSocket fan-out latency on a machine: how long one small write to each of
// N connected loopback TCP sockets takes, with nothing else running.
//   gcc -O2 -o /tmp/lwc bench/loopback_write_cost.c && /tmp/lwc 9900
// (9,900 because each connection takes two descriptors of the usual 20,000 limit.)
// Cost of one small write to each of N connected loopback TCP sockets (the receivers are
// connected but read nothing during the measurement; their buffers are far from full).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  struct rlimit rl = {20000, 20000}; setrlimit(RLIMIT_NOFILE, &rl);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_addr.s_addr = htonl(0x7f000001);
  bind(l, (void*)&a, sizeof a); listen(l, 65535);
  socklen_t al = sizeof a; getsockname(l, (void*)&a, &al);
  int *srv = malloc(n * sizeof(int)), *cli = malloc(n * sizeof(int));
  for (int i = 0; i < n; i++) {
    cli[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cli[i], (void*)&a, sizeof a)) { perror("connect"); return 1; }
    srv[i] = accept(l, 0, 0);
    int one = 1; setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char msg[200]; memset(msg, 'x', sizeof msg);
  for (int round = 0; round < 3; round++) {
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) if (write(srv[i], msg, sizeof msg) != sizeof msg) { perror("write"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double us = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
    printf("%d writes of %zu bytes: %.1f ms, %.2f us per write\n", n, sizeof msg, us / 1e3, us / n);
  }
  return 0;
}
