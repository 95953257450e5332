import { useStrangerCall } from './call/useStrangerCall';
import { BannedScreen } from './components/BannedScreen';
import { ChatScreen } from './components/ChatScreen';
import { Landing } from './components/Landing';

/** Two screens: the landing page until a chat is started, then the chat; or the banned screen. */
export function App() {
  const { view, actions } = useStrangerCall();
  if (view.phase === 'banned') return <BannedScreen />;
  if (view.phase === 'idle') {
    return (
      <Landing
        online={view.online}
        link={view.link}
        turnAvailable={view.turnAvailable}
        privacy={view.privacy}
        notice={view.notice}
        onPrivacy={actions.setPrivacy}
        onStart={actions.start}
      />
    );
  }
  return <ChatScreen view={view} actions={actions} />;
}
