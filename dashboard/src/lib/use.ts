// Reading the store from components: a component re-renders only when what it selects changes
// (selectors return primitives or objects the store replaces rather than mutates).

import { useSyncExternalStore } from "react";
import { type Store, store } from "./store";

export function useSelect<T>(select: (s: Store) => T): T {
  return useSyncExternalStore(
    store.subscribe,
    () => select(store),
    () => select(store),
  );
}
