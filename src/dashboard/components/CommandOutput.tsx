// A command's live output: the untrusted text rendered only as text nodes (SGR colours become
// classed spans, every other escape sequence is stripped by ansi.ts), following the end of the
// log while the reader is at the bottom, and saying when only the tail is shown.
import { memo } from '../memo.js';
import { useLayoutEffect, useMemo, useRef } from 'preact/hooks';
import { parseAnsi } from '../ansi.js';
import { commandOutputUrl } from '../api.js';

export const CommandOutput = memo(function CommandOutput({ id, output, size, live }: { id: string; output: string; size: number; live: boolean }) {
  const segments = useMemo(() => parseAnsi(output), [output]);
  const ref = useRef<HTMLPreElement>(null);
  const atBottom = useRef(true);
  useLayoutEffect(() => {
    const pre = ref.current;
    if (pre && atBottom.current) pre.scrollTop = pre.scrollHeight;
  }, [output]);
  const onScroll = () => {
    const pre = ref.current;
    if (pre) atBottom.current = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
  };
  const truncated = size > output.length;
  return (
    <div class="output">
      {truncated ? (
        <p class="output-note">
          showing last <span class="num">{output.length.toLocaleString()}</span> of <span class="num">{size.toLocaleString()}</span> characters —{' '}
          <a href={commandOutputUrl(id)} target="_blank" rel="noopener noreferrer">
            full log
          </a>
        </p>
      ) : null}
      <pre ref={ref} class={`terminal${live ? ' is-live' : ''}`} data-field="output" tabIndex={0} aria-label="Command output" onScroll={onScroll}>
        {segments.map((s, i) => (s.classes.length === 0 ? s.text : <span key={i} class={s.classes.join(' ')}>{s.text}</span>))}
      </pre>
    </div>
  );
});
