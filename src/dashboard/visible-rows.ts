// Windowing for long tables: which rows of a list are on screen (plus a margin), from the page's
// scroll position. Rendering and painting only those keeps a 1000-host table cheap while deltas
// stream in; a short list is rendered whole (no windowing below `threshold` rows).
import { useEffect, useRef, useState } from 'preact/hooks';

export interface VisibleRange {
  start: number;
  end: number;
  /** Height of the rows not rendered above and below, for spacer rows. */
  before: number;
  after: number;
}

const OVERSCAN = 10;

export function useVisibleRows<T extends HTMLElement>(count: number, threshold = 150): { ref: { current: T | null }; range: VisibleRange } {
  const ref = useRef<T>(null);
  const [rowHeight, setRowHeight] = useState(48);
  const [scrollTick, setScrollTick] = useState(0);

  useEffect(() => {
    if (count <= threshold) return;
    let frame = 0;
    const onScroll = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        setScrollTick((t) => t + 1);
      });
    };
    addEventListener('scroll', onScroll, { passive: true });
    addEventListener('resize', onScroll);
    onScroll(); // the first render had no element to measure from
    return () => {
      removeEventListener('scroll', onScroll);
      removeEventListener('resize', onScroll);
      if (frame) cancelAnimationFrame(frame);
    };
  }, [count > threshold]);

  // Learn the real row height from a rendered row (rows have a fixed layout, so one is enough).
  useEffect(() => {
    const row = ref.current?.querySelector<HTMLElement>('tr[data-host-id]');
    if (row && row.offsetHeight > 0 && Math.abs(row.offsetHeight - rowHeight) > 1) setRowHeight(row.offsetHeight);
  });

  if (count <= threshold || !ref.current) {
    const end = count <= threshold ? count : Math.min(count, 40);
    return { ref, range: { start: 0, end, before: 0, after: (count - end) * rowHeight } };
  }
  void scrollTick;
  const top = ref.current.getBoundingClientRect().top;
  const start = Math.max(0, Math.floor(-top / rowHeight) - OVERSCAN);
  const end = Math.min(count, Math.ceil((innerHeight - top) / rowHeight) + OVERSCAN);
  return { ref, range: { start, end: Math.max(start, end), before: start * rowHeight, after: (count - Math.max(start, end)) * rowHeight } };
}
