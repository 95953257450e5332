import { mediaErrorText, type MediaErrorKind } from '../call/media';
import type { Connection, Phase } from '../call/view';
import { GuardedVideo } from '../guard/GuardedVideo';
import { VideoView } from './VideoView';

interface Props {
  phase: Phase;
  remoteStream: MediaStream | null;
  localStream: MediaStream | null;
  cameraOn: boolean;
  connection: Connection;
  mediaError: MediaErrorKind | null;
  onContinueInText: () => void;
  onRetryMedia: () => void;
  /** The nudity guard's buttons on a blurred video. */
  onNext: () => void;
  onReport: () => void;
}

const connectionLabel: Record<Connection, string> = {
  none: 'Not connected',
  connecting: 'Connecting…',
  direct: 'Direct',
  relay: 'Through relay',
};

/**
 * The video stage: the stranger's video with what stands in for it (the
 * search, the camera error) and the connection badge, and your own camera in
 * the corner. The only place that renders the two <video> elements.
 */
export function Stage({
  phase,
  remoteStream,
  localStream,
  cameraOn,
  connection,
  mediaError,
  onContinueInText,
  onRetryMedia,
  onNext,
  onReport,
}: Props) {
  return (
    <section className="stage" aria-label="Video">
      <div className="remote">
        <GuardedVideo stream={remoteStream} onNext={onNext} onReport={onReport} />
        {!remoteStream && !mediaError && (
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
        {mediaError && (
          <div className="media-error" role="alert">
            <p>{mediaErrorText[mediaError]}</p>
            <div className="media-error-actions">
              <button type="button" className="btn btn-primary" data-testid="continue-text" onClick={onContinueInText}>
                Continue with text
              </button>
              <button type="button" className="btn btn-secondary" data-testid="retry-media" onClick={onRetryMedia}>
                Try again
              </button>
            </div>
          </div>
        )}
        <span className={`conn conn-${connection}`} data-testid="connection-state" data-state={connection}>
          <span className="dot" aria-hidden="true" />
          {connectionLabel[connection]}
        </span>
        <div className={`self ${cameraOn ? '' : 'self-off'}`} hidden={!localStream}>
          <VideoView stream={localStream} muted mirrored className="local-video" label="Your camera" testId="local-video" />
          {!cameraOn && <span className="self-off-label">Camera off</span>}
        </div>
      </div>
    </section>
  );
}
