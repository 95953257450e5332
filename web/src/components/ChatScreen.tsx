import type { CallActions } from '../call/useStrangerCall';
import { allowedActions } from '../call/phase';
import type { CallView } from '../call/view';
import { ChatLog } from './ChatLog';
import { Composer } from './Composer';
import { Controls } from './Controls';
import { Logo } from './Logo';
import { OnlineCount } from './OnlineCount';
import { Stage } from './Stage';

interface Props {
  view: CallView;
  actions: CallActions;
}

/** The chat screen: top bar, the video stage (video mode), the log, the controls and the composer. */
export function ChatScreen({ view, actions }: Props) {
  const { phase, mode } = view;
  const allowed = allowedActions(view);

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
        <Stage
          phase={phase}
          remoteStream={view.remoteStream}
          localStream={view.localStream}
          cameraOn={view.cameraOn}
          connection={view.connection}
          mediaError={view.mediaError}
          onContinueInText={actions.continueInText}
          onRetryMedia={actions.retryMedia}
          onNext={actions.next}
          onReport={actions.report}
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
        />
        <Controls
          phase={phase}
          room={view.room}
          micOn={view.micOn}
          cameraOn={view.cameraOn}
          allowed={allowed}
          onNext={actions.next}
          onStop={actions.stop}
          onReport={actions.report}
          onToggleMic={actions.toggleMic}
          onToggleCamera={actions.toggleCamera}
        />
        <Composer enabled={allowed.chat} room={view.room} onSend={actions.sendChat} onInput={actions.inputChanged} />
      </section>
    </div>
  );
}
