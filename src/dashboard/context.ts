// The store handed down to components (one per page, created in main.tsx).
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { FleetStore } from './store.js';

export const StoreContext = createContext<FleetStore | null>(null);

export function useStore(): FleetStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStore outside StoreContext');
  return store;
}
