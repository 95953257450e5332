import { mediaErrorText, type MediaErrorKind } from '../call/media';
import type { LinkStatus } from '../signaling/client';
import type { Connection, PartnerState, Phase } from '../call/view';
import { GuardedVideo } from '../guard/GuardedVideo';
import { VideoView } from './VideoView';

interface Props {
  phase: Phase;
  remoteStream: MediaStream | null;
  localStream: MediaStream | null;
  cameraOn: boolean;
  connection: Connection;
  /** Our own signaling link: while it is down, the media is not trusted either. */
  link: LinkStatus;
  partner: PartnerState | null;
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
  reconnecting: 'Reconnecting…',
  stalled: 'Video stalled',
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
  link,
  partner,
  mediaError,
  onContinueInText,
  onRetryMedia,
  onNext,
  onReport,
}: Props) {
  // A green "Direct" over a frozen picture is the one thing the badge must
  // never show: without our own link, or with the partner silent, the media
  // is not known to flow.
  const badge: Connection =
    connection === 'none' || (link === 'open' && partner?.link !== 'lost') ? connection : 'reconnecting';
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
        {phase === 'chatting' && partner && <PartnerLabel partner={partner} />}
        <span className={`conn conn-${badge}`} data-testid="connection-state" data-state={badge}>
          <span className="dot" aria-hidden="true" />
          {connectionLabel[badge]}
        </span>
        <div className={`self ${cameraOn ? '' : 'self-off'}`} hidden={!localStream}>
          <VideoView stream={localStream} muted mirrored className="local-video" label="Your camera" testId="local-video" />
          {!cameraOn && <span className="self-off-label">Camera off</span>}
        </div>
      </div>
    </section>
  );
}

/** What the stranger's client says about itself, over their video. */
function PartnerLabel({ partner }: { partner: PartnerState }) {
  if (partner.link === 'lost') {
    return (
      <div className="partner-state partner-lost" data-testid="partner-state" data-state="lost">
        <span className="spinner" aria-hidden="true" />
        Stranger’s connection is lost. They may be reconnecting…
      </div>
    );
  }
  return (
    <>
      {!partner.camera && (
        <div className="partner-state partner-camera-off" data-testid="partner-state" data-state="camera-off">
          Stranger turned their camera off
        </div>
      )}
      {!partner.mic && (
        <span className="partner-muted" data-testid="partner-muted">
          Stranger is muted
        </span>
      )}
    </>
  );
}
