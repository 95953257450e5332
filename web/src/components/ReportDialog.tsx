import { useEffect, useId, useRef, useState } from 'react';
import { REPORT_REASONS, type ReportReason } from '../call/report';

interface Props {
  /** A video chat whose picture is live: the notice says a picture is sent. */
  withPicture: boolean;
  /** The chat is still going: reporting ends it. */
  live: boolean;
  onReport: (reason: ReportReason) => void;
  onCancel: () => void;
}

const reasonLabel: Record<ReportReason, string> = {
  nudity: 'Nudity or sexual content',
  harassment: 'Harassment or threats',
  hate: 'Hate speech',
  spam: 'Spam, ads or scams',
  underage: 'Looks under 18',
  other: 'Something else',
};

/**
 * "Report this stranger?" with the reason. No reason is chosen beforehand:
 * the operator sorts reports by reason, and a default would count every
 * hurried click as that reason. Report stays disabled until one is picked.
 * The radios are native, so arrow keys move between them; Esc cancels.
 */
export function ReportDialog({ withPicture, live, onReport, onCancel }: Props) {
  const titleId = useId();
  const noticeId = useId();
  const [reason, setReason] = useState<ReportReason | null>(null);
  const firstRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    firstRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      // Not the Controls' Esc (which would start skipping the stranger).
      e.preventDefault();
      e.stopImmediatePropagation();
      onCancel();
    };
    window.addEventListener('keydown', onKey, { capture: true });
    return () => window.removeEventListener('keydown', onKey, { capture: true });
  }, [onCancel]);

  return (
    <div className="dialog-backdrop">
      <div
        className="dialog report-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={noticeId}
        data-testid="report-dialog"
      >
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (reason) onReport(reason);
          }}
        >
          <h2 id={titleId}>Report this stranger</h2>
          <fieldset className="report-reasons">
            <legend>What happened?</legend>
            {REPORT_REASONS.map((r, i) => (
              <label key={r} className="report-reason">
                <input
                  type="radio"
                  name="reason"
                  value={r}
                  ref={i === 0 ? firstRef : undefined}
                  checked={reason === r}
                  onChange={() => setReason(r)}
                  data-testid={`reason-${r}`}
                />
                {reasonLabel[r]}
              </label>
            ))}
          </fieldset>
          <p id={noticeId} className="report-notice" data-testid="report-notice">
            {withPicture
              ? 'A picture of the stranger’s video as it is now and the last messages of this chat go to the people who run this site.'
              : 'The last messages of this chat go to the people who run this site.'}
            {live && ' Reporting ends the chat.'}
          </p>
          <div className="dialog-actions">
            <button type="button" className="btn btn-secondary" data-testid="report-cancel" onClick={onCancel}>
              Cancel
            </button>
            <button type="submit" className="btn btn-primary" data-testid="report-confirm" disabled={reason === null}>
              Report
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
