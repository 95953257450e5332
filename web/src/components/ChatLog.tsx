import { useEffect, useRef } from 'react';
import { statusText } from '../call/status';
import type { CallView } from '../call/view';

type Props = Pick<
  CallView,
  'phase' | 'endReason' | 'commonInterests' | 'mediaError' | 'lines' | 'notice' | 'strangerTyping'
> &
  Partial<Pick<CallView, 'interests' | 'waiting' | 'mode'>>;

/** The status line, the chat lines and the last notice, and whether the stranger is typing. */
export function ChatLog(props: Props) {
  const { lines, notice, strangerTyping } = props;
  const logRef = useRef<HTMLDivElement>(null);
  const status = statusText(props);

  // Keep the newest line in sight.
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines.length, strangerTyping]);

  return (
    <>
      {/* Focusable, so the log can be scrolled from the keyboard. */}
      <div className="log" ref={logRef} data-testid="chat-log" role="log" aria-live="polite" tabIndex={0}>
        <div className="status" data-testid="status" role="status">
          <p className="status-main">
            {(props.phase === 'waiting' || props.phase === 'starting') && (
              <span className="spinner" aria-hidden="true" data-testid="searching" />
            )}
            {status.main}
          </p>
          {status.sub && <p className="status-sub">{status.sub}</p>}
        </div>
        {lines.map((l) => (
          <p
            key={l.id}
            className={`line line-${l.from}${l.from === 'you' ? ` line-${l.delivery}` : ''}`}
            data-delivery={l.from === 'you' ? l.delivery : undefined}
          >
            <strong>{l.from === 'you' ? 'You:' : 'Stranger:'}</strong> <span>{l.text}</span>
            {l.from === 'you' && l.delivery === 'pending' && <span className="line-pending"> (sending…)</span>}
          </p>
        ))}
        {notice && <p className="notice">{notice}</p>}
      </div>
      <div className="typing" data-testid="typing" aria-live="polite">
        {strangerTyping ? 'Stranger is typing…' : ''}
      </div>
    </>
  );
}
