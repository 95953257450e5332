import { useCallback, useEffect, useRef, useState } from 'react';
import type { CallActions } from '../call/useStrangerCall';
import { allowedActions } from '../call/phase';
import { composerPlaceholder, pinnedNotice } from '../call/status';
import type { CallView } from '../call/view';
import { ChatLog } from './ChatLog';
import { Composer } from './Composer';
import { Controls } from './Controls';
import { LeaveDialog } from './LeaveDialog';
import { ReportDialog } from './ReportDialog';
import { ModeOffer } from './ModeOffer';
import { useVisualViewportHeight } from './useVisualViewportHeight';
import { Logo } from './Logo';
import { OnlineCount } from './OnlineCount';
import { Stage } from './Stage';

interface Props {
  view: CallView;
  actions: CallActions;
}

/** The history entry the chat screen pushes, so Back stays on the site. */
const CHAT_ENTRY = 'stranger-chat';

/**
 * The chat screen: top bar, the video stage (video mode), the log, what
 * ended (pinned above the composer, where the eye is), the controls and the
 * composer. Back and the logo ask before they end a live chat.
 */
export function ChatScreen({ view, actions }: Props) {
  const { phase, mode } = view;
  const allowed = allowedActions(view);
  const [askLeave, setAskLeave] = useState(false);
  const [askReport, setAskReport] = useState(false);
  const pinned = pinnedNotice(view);

  // The browser's Back must not leave the site mid-chat: the chat screen has
  // a history entry of its own, and Back to the entry below it is caught here.
  const phaseRef = useRef(phase);
  useEffect(() => {
    phaseRef.current = phase;
  }, [phase]);
  const home = actions.home;
  useEffect(() => {
    if ((window.history.state as { screen?: string } | null)?.screen !== CHAT_ENTRY) {
      window.history.pushState({ screen: CHAT_ENTRY }, '');
    }
    const onPop = () => {
      if (phaseRef.current === 'chatting') {
        // Stay (put the entry back) and ask.
        window.history.pushState({ screen: CHAT_ENTRY }, '');
        setAskLeave(true);
      } else {
        home();
      }
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [home]);

  useVisualViewportHeight();

  const leaveAsked = askLeave && phase === 'chatting';
  const stay = useCallback(() => setAskLeave(false), []);
  const openReport = useCallback(() => setAskReport(true), []);
  const cancelReport = useCallback(() => setAskReport(false), []);
  // The dialog lasts while there is someone to report (the partner may leave meanwhile).
  const reportAsked = askReport && allowed.report && !leaveAsked;

  return (
    <div className={`chat-screen mode-${mode}`}>
      <header className="topbar">
        <Logo onClick={() => (phase === 'chatting' ? setAskLeave(true) : actions.home())} />
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

      <main className="chat-main">
        <h1 className="sr-only">{mode === 'video' ? 'Video chat with a stranger' : 'Text chat with a stranger'}</h1>
        {mode === 'video' && (
          <Stage
            phase={phase}
            remoteStream={view.remoteStream}
            localStream={view.localStream}
            cameraOn={view.cameraOn}
            connection={view.connection}
            link={view.link}
            partner={view.partner}
            mediaError={view.mediaError}
            onContinueInText={actions.continueInText}
            onRetryMedia={actions.retryMedia}
            onNext={actions.next}
            onReport={openReport}
          />
        )}

        <section className="chat" aria-label="Chat">
          <ChatLog
            phase={phase}
            endReason={view.endReason}
            commonInterests={view.commonInterests}
            mediaError={view.mediaError}
            lines={view.lines}
            notice={view.notice}
            strangerTyping={view.strangerTyping}
            interests={view.interests}
            waiting={view.waiting}
            mode={mode}
          />
          {/* Always in the page, so screen readers announce what appears in it. */}
          <div
            className={`pinned ${pinned ? `pinned-${pinned.tone}` : 'pinned-empty'}`}
            data-testid="pinned"
            data-kind={pinned?.kind ?? ''}
            role="status"
            aria-live="assertive"
          >
            {pinned?.text}
          </div>
          {phase === 'waiting' && <ModeOffer key={`${mode}`} mode={mode} onSwitch={actions.switchMode} />}
          <Controls
            phase={phase}
            room={view.room}
            micOn={view.micOn}
            cameraOn={view.cameraOn}
            allowed={allowed}
            onNext={actions.next}
            onStop={actions.stop}
            onReport={openReport}
            onToggleMic={actions.toggleMic}
            onToggleCamera={actions.toggleCamera}
          />
          <Composer
            enabled={allowed.chat}
            room={view.room}
            placeholder={composerPlaceholder(view)}
            onSend={actions.sendChat}
            onInput={actions.inputChanged}
          />
        </section>
      </main>
      {reportAsked && (
        <ReportDialog
          withPicture={phase === 'chatting' && view.remoteStream !== null}
          live={phase === 'chatting'}
          onReport={(reason) => {
            setAskReport(false);
            actions.report(reason);
          }}
          onCancel={cancelReport}
        />
      )}
      {leaveAsked && (
        <LeaveDialog
          onLeave={() => {
            setAskLeave(false);
            actions.home();
          }}
          onStay={stay}
        />
      )}
    </div>
  );
}
