import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { CallActions } from '../call/useStrangerCall';
import type { CallView, Connection } from '../call/view';
import { mediaErrorText } from '../call/media';
import { statusText } from '../call/status';
import { CameraIcon, FlagIcon, MicIcon, SendIcon } from './Icons';
import { Logo } from './Logo';
import { OnlineCount } from './OnlineCount';
import { VideoView } from './VideoView';

interface Props {
  view: CallView;
  actions: CallActions;
}

const connectionLabel: Record<Connection, string> = {
  none: 'Not connected',
  connecting: 'Connecting…',
  direct: 'Direct',
  relay: 'Through relay',
};

export function ChatScreen({ view, actions }: Props) {
  const { phase, mode } = view;
  const chatting = phase === 'chatting';
  const [draft, setDraft] = useState('');
  const [confirmNext, setConfirmNext] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const status = statusText(view);

  // A new phase forgets a half-done "Really?".
  useEffect(() => setConfirmNext(false), [phase, view.room]);

  // Keep the newest line in sight.
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [view.lines.length, view.strangerTyping]);

  // Put the cursor in the chat box when a chat starts, so one can type at once;
  // not on touch screens, where the keyboard would cover the stranger's video.
  useEffect(() => {
    if (!chatting) {
      setDraft('');
      return;
    }
    if (window.matchMedia?.('(pointer: fine)').matches) inputRef.current?.focus({ preventScroll: true });
  }, [chatting, view.room]);

  // Esc: once asks "Really?", twice skips. After a chat ended, once starts a new one.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape' || e.repeat) return;
      if (phase === 'ended' && !view.mediaError) {
        e.preventDefault();
        actions.next();
      } else if (phase === 'chatting') {
        e.preventDefault();
        if (confirmNext) {
          setConfirmNext(false);
          actions.next();
        } else {
          setConfirmNext(true);
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [phase, confirmNext, actions, view.mediaError]);

  const send = (e: FormEvent) => {
    e.preventDefault();
    if (actions.sendChat(draft)) setDraft('');
  };

  const nextLabel = phase === 'ended' ? 'New chat' : confirmNext ? 'Really?' : 'Next';
  const nextDisabled = phase === 'waiting' || phase === 'starting' || (phase === 'ended' && !!view.mediaError);
  const stopDisabled = phase !== 'waiting' && phase !== 'chatting' && phase !== 'starting';
  const reportDisabled = phase !== 'chatting' && !(phase === 'ended' && view.endReason !== null && view.endReason !== 'you-reported');

  const controls = (
    <div className="controls" role="toolbar" aria-label="Chat controls">
      <button
        type="button"
        className={`btn btn-primary btn-next ${confirmNext ? 'confirm' : ''}`}
        data-testid="next"
        disabled={nextDisabled}
        onClick={() => {
          setConfirmNext(false);
          actions.next();
        }}
        aria-keyshortcuts="Escape"
        title={phase === 'chatting' ? 'Skip to the next stranger (Esc, Esc)' : 'Find a new stranger (Esc)'}
      >
        {nextLabel}
        <kbd aria-hidden="true">Esc</kbd>
      </button>
      <button
        type="button"
        className="btn btn-secondary"
        data-testid="stop"
        disabled={stopDisabled}
        onClick={actions.stop}
      >
        Stop
      </button>
      {mode === 'video' && !view.mediaError && (
        <>
          <button
            type="button"
            className={`btn btn-icon ${view.micOn ? '' : 'off'}`}
            data-testid="mic-toggle"
            aria-pressed={!view.micOn}
            aria-label={view.micOn ? 'Mute microphone' : 'Unmute microphone'}
            title={view.micOn ? 'Mute microphone' : 'Unmute microphone'}
            onClick={actions.toggleMic}
          >
            <MicIcon off={!view.micOn} />
          </button>
          <button
            type="button"
            className={`btn btn-icon ${view.cameraOn ? '' : 'off'}`}
            data-testid="camera-toggle"
            aria-pressed={!view.cameraOn}
            aria-label={view.cameraOn ? 'Turn camera off' : 'Turn camera on'}
            title={view.cameraOn ? 'Turn camera off' : 'Turn camera on'}
            onClick={actions.toggleCamera}
          >
            <CameraIcon off={!view.cameraOn} />
          </button>
        </>
      )}
      <button
        type="button"
        className="btn btn-icon btn-report"
        data-testid="report"
        disabled={reportDisabled}
        onClick={actions.report}
        aria-label="Report this stranger"
        title="Report this stranger for breaking the rules"
      >
        <FlagIcon />
      </button>
    </div>
  );

  return (
    <div className={`chat-screen mode-${mode}`}>
      <header className="topbar">
        <Logo onClick={actions.home} />
        <div className="topbar-right">
          {view.link !== 'open' && (
            <span className="link-banner" role="status" data-testid="link-state">
              <span className="spinner" aria-hidden="true" />
              {view.link === 'closed' ? 'Disconnected (opened in another tab?)' : 'Reconnecting…'}
            </span>
          )}
          {view.link === 'open' && <OnlineCount online={view.online} link={view.link} />}
        </div>
      </header>

      {mode === 'video' && (
        <section className="stage" aria-label="Video">
          <div className="remote">
            <VideoView
              stream={view.remoteStream}
              className="remote-video"
              label="Stranger’s video"
              testId="remote-video"
            />
            {!view.remoteStream && !view.mediaError && (
              <div className="stage-overlay" aria-hidden="true">
                {phase === 'waiting' || phase === 'starting' ? (
                  <>
                    <span className="spinner big" />
                    <span>{phase === 'starting' ? 'Starting your camera…' : 'Looking for a stranger…'}</span>
                  </>
                ) : (
                  <span className="muted">{phase === 'ended' ? 'Press New chat to meet someone' : ''}</span>
                )}
              </div>
            )}
            {view.mediaError && (
              <div className="media-error" role="alert">
                <p>{mediaErrorText[view.mediaError]}</p>
                <div className="media-error-actions">
                  <button
                    type="button"
                    className="btn btn-primary"
                    data-testid="continue-text"
                    onClick={actions.continueInText}
                  >
                    Continue with text
                  </button>
                  <button
                    type="button"
                    className="btn btn-secondary"
                    data-testid="retry-media"
                    onClick={actions.retryMedia}
                  >
                    Try again
                  </button>
                </div>
              </div>
            )}
            <span className={`conn conn-${view.connection}`} data-testid="connection-state" data-state={view.connection}>
              <span className="dot" aria-hidden="true" />
              {connectionLabel[view.connection]}
            </span>
            <div className={`self ${view.cameraOn ? '' : 'self-off'}`} hidden={!view.localStream}>
              <VideoView stream={view.localStream} muted mirrored className="local-video" label="Your camera" testId="local-video" />
              {!view.cameraOn && <span className="self-off-label">Camera off</span>}
            </div>
          </div>
        </section>
      )}

      <section className="chat" aria-label="Chat">
        <div className="log" ref={logRef} data-testid="chat-log" role="log" aria-live="polite">
          <div className="status" data-testid="status" role="status">
            <p className="status-main">{status.main}</p>
            {status.sub && <p className="status-sub">{status.sub}</p>}
          </div>
          {view.lines.map((l) => (
            <p key={l.id} className={`line line-${l.from}`}>
              <strong>{l.from === 'you' ? 'You:' : 'Stranger:'}</strong> <span>{l.text}</span>
            </p>
          ))}
          {view.notice && <p className="notice">{view.notice}</p>}
        </div>
        <div className="typing" data-testid="typing" aria-live="polite">
          {view.strangerTyping ? 'Stranger is typing…' : ''}
        </div>
        {controls}
        <form className="composer" onSubmit={send}>
          <label htmlFor="chat-input" className="sr-only">
            Message
          </label>
          <input
            id="chat-input"
            ref={inputRef}
            data-testid="chat-input"
            type="text"
            autoComplete="off"
            enterKeyHint="send"
            maxLength={1000}
            placeholder={chatting ? 'Type a message…' : 'Chat starts when you are matched'}
            disabled={!chatting}
            value={draft}
            onChange={(e) => {
              setDraft(e.target.value);
              actions.inputChanged(e.target.value);
            }}
          />
          <button
            type="submit"
            className="btn btn-primary btn-send"
            data-testid="chat-send"
            disabled={!chatting || draft.trim() === ''}
            aria-label="Send message"
          >
            <SendIcon />
            <span className="send-text">Send</span>
          </button>
        </form>
      </section>
    </div>
  );
}
