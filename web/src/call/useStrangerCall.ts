import { startTransition, useEffect, useMemo, useRef, useState } from 'react';
import { SignalingClient, defaultHeartbeat, defaultSignalingUrl } from '../signaling/client';
import type { Mode } from '../signaling/protocol';
import { CallController, type CallDeps } from './controller';
import { browserEvidence } from './evidence';
import type { ReportReason } from './report';
import { initialView, type CallView } from './view';

/** The browser's implementations; tests pass fakes instead. */
export function browserDeps(): CallDeps {
  const md = typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
  return {
    createSignaling: (handlers) =>
      new SignalingClient({ url: defaultSignalingUrl(), handlers, heartbeat: defaultHeartbeat }),
    createPeerConnection: (config) => new RTCPeerConnection(config),
    createMediaStream: () => new MediaStream(),
    getUserMedia: md?.getUserMedia ? (c) => md.getUserMedia(c) : undefined,
    mediaAllowed: async () => {
      if (!navigator.permissions?.query) return false;
      const q = (name: string) =>
        navigator.permissions.query({ name: name as PermissionName }).then((s) => s.state === 'granted');
      const [cam, mic] = await Promise.all([q('camera'), q('microphone')]);
      return cam && mic;
    },
    warmUpWebRTC: () => {
      // The first RTCPeerConnection of a page starts the WebRTC engine (its
      // threads, codecs): tens of ms that would block the click on Video.
      // Asking for the codecs starts it too, without a connection; done when
      // the landing page is idle.
      const warm = () => {
        try {
          RTCRtpSender.getCapabilities('video');
        } catch {
          /* no WebRTC: the call will say so */
        }
      };
      if (typeof RTCRtpSender === 'undefined' || typeof RTCRtpSender.getCapabilities !== 'function') return;
      if (typeof requestIdleCallback === 'function') requestIdleCallback(warm, { timeout: 1000 });
      else setTimeout(warm, 0);
    },
    evidence: browserEvidence(),
    storage: (() => {
      try {
        return window.localStorage;
      } catch {
        return undefined; // storage disabled (some private modes)
      }
    })(),
    fetchOnline: async () => {
      // Nobody sees the count in a background tab; spare the server the request.
      if (document.hidden) return null;
      const res = await fetch('/api/online', { cache: 'no-store' });
      if (!res.ok) return null;
      const body: unknown = await res.json();
      const n = (body as { online?: unknown } | null)?.online;
      return typeof n === 'number' ? n : null;
    },
  };
}

/** The user's actions; arrow-typed because the UI passes them around unbound. */
export interface CallActions {
  start: (mode: Mode, interests: readonly string[]) => void;
  next: () => void;
  stop: () => void;
  home: () => void;
  report: (reason: ReportReason) => void;
  sendChat: (text: string) => boolean;
  inputChanged: (text: string) => void;
  toggleMic: () => void;
  toggleCamera: () => void;
  setPrivacy: (on: boolean) => void;
  continueInText: () => void;
  retryMedia: () => void;
  switchMode: () => void;
}

/** Read-only facts for end-to-end tests, at window.__stranger. */
export interface DebugHandle {
  readonly pcCount: number;
  readonly state: string;
  readonly room: string | null;
  readonly session: string | null;
  readonly initiator: boolean;
  readonly link: string;
  readonly connection: string;
  /** The partner's link as their presence tells it: ok, lost, or '' before any presence. */
  readonly partnerLink: string;
  /** Drops the signaling socket and resumes, as after a network change (for drop tests). */
  reconnectSignaling(): void;
}

declare global {
  interface Window {
    __stranger?: DebugHandle;
  }
}

/**
 * The one hook that owns a Stranger call: the signaling socket, the peer
 * connection and the media streams live in a CallController held in a ref;
 * React state holds only the rendered CallView. The controller is created in
 * an effect and disposed in its cleanup, so React.StrictMode's mount, unmount,
 * mount leaves exactly one socket and at most one peer connection.
 */
export function useStrangerCall(makeDeps: () => CallDeps = browserDeps): { view: CallView; actions: CallActions } {
  const ctl = useRef<CallController | null>(null);
  const [view, setView] = useState<CallView | null>(null);
  const depsRef = useRef(makeDeps);
  // Bumped when the page comes back from the back-forward cache: its session
  // was closed on the way in, so a fresh controller (and session) starts.
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const c = new CallController(depsRef.current());
    ctl.current = c;
    // Views render as transitions: React renders them in slices, so the
    // signaling frames and negotiation steps the controller handles are not
    // held up behind a render (a click on Video used to block the page for
    // the chat screen's whole first render; `matched` waited for it).
    const unsubscribe = c.subscribe((v) => startTransition(() => setView(v)));
    setView(c.getView());
    // Connect a microtask later: StrictMode's mount, unmount, mount runs
    // synchronously, so the throwaway first controller never opens a socket
    // (no "closed before the connection is established" in the console).
    let live = true;
    queueMicrotask(() => {
      if (live) c.connect();
    });

    const onOnline = () => c.networkOnline();
    window.addEventListener('online', onOnline);
    // A page kept in the back-forward cache would keep its socket, and so
    // its session, "online" (or waiting in the queue) with nobody behind it.
    // Leaving ends the session (close 1000); coming back starts a new one.
    const onPageHide = () => c.dispose();
    const onPageShow = (e: PageTransitionEvent) => {
      if (e.persisted) setGeneration((g) => g + 1);
    };
    window.addEventListener('pagehide', onPageHide);
    window.addEventListener('pageshow', onPageShow);
    const handle: DebugHandle = {
      get pcCount() {
        return c.getView().pcCount;
      },
      get state() {
        return c.getView().phase;
      },
      get room() {
        return c.getView().room;
      },
      get session() {
        return c.getView().session;
      },
      get initiator() {
        return c.getView().initiator;
      },
      get link() {
        return c.getView().link;
      },
      get connection() {
        return c.getView().connection;
      },
      get partnerLink() {
        return c.getView().partner?.link ?? '';
      },
      reconnectSignaling: () => c.reconnectSignaling(),
    };
    window.__stranger = handle;

    return () => {
      live = false;
      window.removeEventListener('online', onOnline);
      window.removeEventListener('pagehide', onPageHide);
      window.removeEventListener('pageshow', onPageShow);
      if (window.__stranger === handle) delete window.__stranger;
      unsubscribe();
      c.dispose();
      if (ctl.current === c) ctl.current = null;
    };
  }, [generation]);

  const actions = useMemo<CallActions>(
    () => ({
      start: (mode, interests) => ctl.current?.start(mode, interests),
      next: () => ctl.current?.next(),
      stop: () => ctl.current?.stop(),
      home: () => ctl.current?.home(),
      report: (reason) => ctl.current?.report(reason),
      sendChat: (text) => ctl.current?.sendChat(text) ?? false,
      inputChanged: (text) => ctl.current?.inputChanged(text),
      toggleMic: () => ctl.current?.toggleMic(),
      toggleCamera: () => ctl.current?.toggleCamera(),
      setPrivacy: (on) => ctl.current?.setPrivacy(on),
      continueInText: () => ctl.current?.continueInText(),
      retryMedia: () => ctl.current?.retryMedia(),
      switchMode: () => ctl.current?.switchMode(),
    }),
    [],
  );

  // Before the effect runs (first render) the view is the neutral initial one.
  return { view: view ?? initialView, actions };
}
