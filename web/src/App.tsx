import { useStrangerCall } from './call/useStrangerCall';
import { ChatScreen } from './components/ChatScreen';
import { Landing } from './components/Landing';

/** Two screens: the landing page until a chat is started, then the chat. */
export function App() {
  const { view, actions } = useStrangerCall();
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
