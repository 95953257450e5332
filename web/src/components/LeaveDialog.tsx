import { useEffect, useId, useRef } from 'react';

interface Props {
  onLeave: () => void;
  onStay: () => void;
}

/** "End this chat?" before Back or the logo end a live chat. Esc or Stay keeps the chat. */
export function LeaveDialog({ onLeave, onStay }: Props) {
  const titleId = useId();
  const stayRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    // Staying is the safe answer: it gets the focus.
    stayRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      // Not the Controls' Esc (which would start skipping the stranger).
      e.preventDefault();
      e.stopImmediatePropagation();
      onStay();
    };
    window.addEventListener('keydown', onKey, { capture: true });
    return () => window.removeEventListener('keydown', onKey, { capture: true });
  }, [onStay]);

  return (
    <div className="dialog-backdrop">
      <div className="dialog" role="alertdialog" aria-modal="true" aria-labelledby={titleId} data-testid="leave-dialog">
        <h2 id={titleId}>End this chat?</h2>
        <p>The stranger will see that you left.</p>
        <div className="dialog-actions">
          <button type="button" className="btn btn-secondary" ref={stayRef} data-testid="leave-stay" onClick={onStay}>
            Stay
          </button>
          <button type="button" className="btn btn-primary" data-testid="leave-confirm" onClick={onLeave}>
            End chat
          </button>
        </div>
      </div>
    </div>
  );
}
