import { useEffect, useState } from 'react';
import type { AllowedActions } from '../call/phase';
import type { Phase } from '../call/view';
import { CameraIcon, FlagIcon, MicIcon } from './Icons';

interface Props {
  phase: Phase;
  room: string | null;
  micOn: boolean;
  cameraOn: boolean;
  /** allowedActions of the view: the controller refuses what is disabled here. */
  allowed: AllowedActions;
  onNext: () => void;
  onStop: () => void;
  onReport: () => void;
  onToggleMic: () => void;
  onToggleCamera: () => void;
}

/** How long "Really?" waits for the second Esc or click. */
export const CONFIRM_MS = 3000;

/**
 * Next (with its Esc shortcut), Stop, mic, camera and report. Skipping a
 * stranger takes two steps, the button or Esc twice ("Really?"), so one
 * keystroke does not end a conversation.
 */
export function Controls({ phase, room, micOn, cameraOn, allowed, onNext, onStop, onReport, onToggleMic, onToggleCamera }: Props) {
  // The chat in which "Really?" was asked; a new phase or room forgets it.
  const here = `${phase} ${room ?? ''}`;
  const [confirmIn, setConfirmIn] = useState<string | null>(null);
  const confirmNext = confirmIn === here;

  // "Really?" is a question for a moment, not a state to come back to.
  useEffect(() => {
    if (!confirmNext) return;
    const t = setTimeout(() => setConfirmIn(null), CONFIRM_MS);
    return () => clearTimeout(t);
  }, [confirmNext]);

  // Esc: once asks "Really?", twice skips. After a chat ended, once starts a new one.
  useEffect(() => {
    if (!allowed.next) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape' || e.repeat) return;
      if (phase === 'ended') {
        e.preventDefault();
        onNext();
      } else if (phase === 'chatting') {
        e.preventDefault();
        if (confirmNext) {
          setConfirmIn(null);
          onNext();
        } else {
          setConfirmIn(here);
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [phase, here, confirmNext, allowed.next, onNext]);

  const nextLabel = phase === 'ended' ? 'New chat' : confirmNext ? 'Really?' : 'Next';

  return (
    <div className="controls" role="toolbar" aria-label="Chat controls">
      <button
        type="button"
        className={`btn btn-primary btn-next ${confirmNext ? 'confirm' : ''}`}
        data-testid="next"
        disabled={!allowed.next}
        onClick={() => {
          setConfirmIn(null);
          onNext();
        }}
        aria-keyshortcuts="Escape"
        title={phase === 'chatting' ? 'Skip to the next stranger (Esc, Esc)' : 'Find a new stranger (Esc)'}
      >
        {nextLabel}
        <kbd aria-hidden="true">Esc</kbd>
      </button>
      <button type="button" className="btn btn-secondary" data-testid="stop" disabled={!allowed.stop} onClick={onStop}>
        Stop
      </button>
      {allowed.toggleMedia && (
        <>
          <button
            type="button"
            className={`btn btn-icon ${micOn ? '' : 'off'}`}
            data-testid="mic-toggle"
            aria-pressed={!micOn}
            aria-label={micOn ? 'Mute microphone' : 'Unmute microphone'}
            title={micOn ? 'Mute microphone' : 'Unmute microphone'}
            onClick={onToggleMic}
          >
            <MicIcon off={!micOn} />
          </button>
          <button
            type="button"
            className={`btn btn-icon ${cameraOn ? '' : 'off'}`}
            data-testid="camera-toggle"
            aria-pressed={!cameraOn}
            aria-label={cameraOn ? 'Turn camera off' : 'Turn camera on'}
            title={cameraOn ? 'Turn camera off' : 'Turn camera on'}
            onClick={onToggleCamera}
          >
            <CameraIcon off={!cameraOn} />
          </button>
        </>
      )}
      <button
        type="button"
        className="btn btn-icon btn-report"
        data-testid="report"
        disabled={!allowed.report}
        onClick={onReport}
        aria-label="Report this stranger"
        title="Report this stranger for breaking the rules"
      >
        <FlagIcon />
      </button>
    </div>
  );
}
