package protocol

import (
	"encoding/json"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// Code is an error code of an `error` frame.
type Code string

// Error codes of protocol v1.
const (
	CodeBadMessage  Code = "bad_message"
	CodeUnknownType Code = "unknown_type"
	CodeBadState    Code = "bad_state"
	CodeNotChatting Code = "not_chatting"
	CodeTooLong     Code = "too_long"
	CodeRateLimited Code = "rate_limited"
	CodeBanned      Code = "banned"
	CodeOverloaded  Code = "overloaded"
	// CodePowRequired (1.1): the session's first join or next lacked a good
	// proof-of-work solution; the error frame carries a fresh challenge.
	CodePowRequired Code = "pow_required"
)

// Codes lists every code, for metrics.
var Codes = [...]Code{CodeBadMessage, CodeUnknownType, CodeBadState, CodeNotChatting,
	CodeTooLong, CodeRateLimited, CodeBanned, CodeOverloaded, CodePowRequired}

// Welcome is the first frame on every connection. It carries no seq.
type Welcome struct {
	Type        string      `json:"type"` // always "welcome"
	Session     string      `json:"session"`
	ResumeToken string      `json:"resumeToken"`
	Resumed     bool        `json:"resumed"`
	ICEServers  []ICEServer `json:"iceServers"`
	// TURN says the deployment offers a TURN relay whose credentials come
	// with matched (protocol 1.1), so a client can offer relay-only calls
	// before it is matched.
	TURN   bool `json:"turn,omitempty"`
	Online int  `json:"online"`
	// Pow is the proof-of-work challenge (1.1) when the deployment asks
	// for one and the session has not yet given a solution.
	Pow *PowChallenge `json:"pow,omitempty"`
	// On a resume only:
	State   string    `json:"state,omitempty"`
	Chat    *ChatInfo `json:"chat,omitempty"`
	LastSeq *int64    `json:"lastSeq,omitempty"`
}

// PowChallenge is an ALTCHA challenge object (1.1, "Proof of work").
type PowChallenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// ChatInfo describes the current chat in a resumed welcome.
type ChatInfo struct {
	Room            string   `json:"room"`
	Initiator       bool     `json:"initiator"`
	Mode            string   `json:"mode"`
	CommonInterests []string `json:"commonInterests"`
	// ICEServers is the chat's list as in matched.iceServers, with freshly
	// minted TURN credentials (protocol 1.1), for a client that resumed
	// mid-call and restarts ICE. Omitted by a hub without ICE servers.
	ICEServers []ICEServer `json:"iceServers,omitempty"`
}

// EncodeWelcome encodes a welcome frame.
func EncodeWelcome(w Welcome) []byte {
	w.Type = "welcome"
	if w.ICEServers == nil {
		w.ICEServers = []ICEServer{}
	}
	if w.Chat != nil && w.Chat.CommonInterests == nil {
		// The protocol says commonInterests is an array (possibly empty);
		// a nil slice would encode as null. Copy: w.Chat is the caller's.
		c := *w.Chat
		c.CommonInterests = []string{}
		w.Chat = &c
	}
	b, err := json.Marshal(w)
	if err != nil { // only strings, bools and ints: cannot fail
		panic("protocol: encoding welcome: " + err.Error())
	}
	return b
}

// The Append* functions append one server frame to dst. They are the relay
// hot path, so they write JSON directly instead of going through reflection.

func head(dst []byte, typ string, seq int64) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","seq":`...)
	return strconv.AppendInt(dst, seq, 10)
}

// AppendString appends s as a JSON string. Invalid UTF-8 is replaced, so the
// result is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	out, err := jsontext.AppendQuote(dst, s)
	if err != nil {
		// AppendQuote still appended a valid string with U+FFFD substituted.
		return out
	}
	return out
}

// AppendWaiting appends {"type":"waiting"}.
func AppendWaiting(dst []byte, seq int64) []byte {
	return append(head(dst, "waiting", seq), '}')
}

// AppendMatched appends a matched frame without iceServers (protocol 1.0).
func AppendMatched(dst []byte, seq int64, room string, initiator bool, mode Mode, common []string) []byte {
	return AppendMatchedICE(dst, seq, room, initiator, mode, common, nil)
}

// AppendMatchedICE appends a matched frame carrying the chat's ICE servers
// (protocol 1.1: TURN credentials come with the match). A nil ice omits the
// field; an empty one encodes as [].
func AppendMatchedICE(dst []byte, seq int64, room string, initiator bool, mode Mode, common []string, ice []ICEServer) []byte {
	dst = head(dst, "matched", seq)
	dst = append(dst, `,"room":`...)
	dst = AppendString(dst, room)
	dst = append(dst, `,"initiator":`...)
	dst = strconv.AppendBool(dst, initiator)
	dst = append(dst, `,"mode":"`...)
	dst = append(dst, mode.String()...)
	dst = append(dst, `","commonInterests":[`...)
	for i, s := range common {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	dst = append(dst, ']')
	if ice != nil {
		dst = append(dst, `,"iceServers":`...)
		dst = appendICEServers(dst, ice)
	}
	return append(dst, '}')
}

// appendICEServers appends servers as a JSON array of RTCIceServer
// dictionaries, empty username and credential omitted as in ICEServer's
// JSON encoding.
func appendICEServers(dst []byte, servers []ICEServer) []byte {
	dst = append(dst, '[')
	for i, s := range servers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"urls":[`...)
		for j, u := range s.URLs {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, u)
		}
		dst = append(dst, ']')
		if s.Username != "" {
			dst = append(dst, `,"username":`...)
			dst = AppendString(dst, s.Username)
		}
		if s.Credential != "" {
			dst = append(dst, `,"credential":`...)
			dst = AppendString(dst, s.Credential)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// AppendSignal appends a signal frame; data is the partner's raw JSON value,
// passed through unchanged.
func AppendSignal(dst []byte, seq int64, room string, data []byte) []byte {
	dst = head(dst, "signal", seq)
	dst = append(dst, `,"room":`...)
	dst = AppendString(dst, room)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendChat appends a chat frame.
func AppendChat(dst []byte, seq int64, text string) []byte {
	dst = head(dst, "chat", seq)
	dst = append(dst, `,"text":`...)
	dst = AppendString(dst, text)
	return append(dst, '}')
}

// AppendTyping appends a typing frame.
func AppendTyping(dst []byte, seq int64, typing bool) []byte {
	dst = head(dst, "typing", seq)
	dst = append(dst, `,"typing":`...)
	dst = strconv.AppendBool(dst, typing)
	return append(dst, '}')
}

// AppendPeerLeft appends a peer_left frame.
func AppendPeerLeft(dst []byte, seq int64, reason string) []byte {
	dst = head(dst, "peer_left", seq)
	dst = append(dst, `,"reason":`...)
	dst = AppendString(dst, reason)
	return append(dst, '}')
}

// AppendReported appends a reported frame.
func AppendReported(dst []byte, seq int64) []byte {
	return append(head(dst, "reported", seq), '}')
}

// AppendReportedFiled appends a reported frame naming the recorded report
// and the token its evidence may be uploaded with (protocol 1.1, "Reports
// carry evidence"). Empty values are left out: a report the store did not
// take has neither.
func AppendReportedFiled(dst []byte, seq int64, report, evidenceToken string) []byte {
	dst = head(dst, "reported", seq)
	if report != "" {
		dst = append(dst, `,"report":`...)
		dst = AppendString(dst, report)
	}
	if evidenceToken != "" {
		dst = append(dst, `,"evidenceToken":`...)
		dst = AppendString(dst, evidenceToken)
	}
	return append(dst, '}')
}

// AppendPong appends the answer to a client's ping (the heartbeat
// extension): ack is the highest client seq the server has processed, so
// the client knows every frame up to it arrived.
func AppendPong(dst []byte, seq, ack int64) []byte {
	dst = head(dst, "pong", seq)
	dst = append(dst, `,"ack":`...)
	dst = strconv.AppendInt(dst, ack, 10)
	return append(dst, '}')
}

// AppendCounts appends a counts frame (the counts extension): sessions
// online in the deployment and sessions waiting per mode.
func AppendCounts(dst []byte, seq int64, online, waitingVideo, waitingText int) []byte {
	dst = head(dst, "counts", seq)
	dst = append(dst, `,"online":`...)
	dst = strconv.AppendInt(dst, int64(online), 10)
	dst = append(dst, `,"waiting":{"video":`...)
	dst = strconv.AppendInt(dst, int64(waitingVideo), 10)
	dst = append(dst, `,"text":`...)
	dst = strconv.AppendInt(dst, int64(waitingText), 10)
	return append(dst, "}}"...)
}

// AppendError appends an error frame.
func AppendError(dst []byte, seq int64, code Code, message string) []byte {
	dst = head(dst, "error", seq)
	dst = append(dst, `,"code":`...)
	dst = AppendString(dst, string(code))
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	return append(dst, '}')
}

// AppendPowRequired appends error pow_required with the fresh challenge the
// client is to solve before it tries again.
func AppendPowRequired(dst []byte, seq int64, message string, c PowChallenge) []byte {
	dst = head(dst, "error", seq)
	dst = append(dst, `,"code":"pow_required","message":`...)
	dst = AppendString(dst, message)
	dst = append(dst, `,"pow":{"algorithm":`...)
	dst = AppendString(dst, c.Algorithm)
	dst = append(dst, `,"challenge":`...)
	dst = AppendString(dst, c.Challenge)
	dst = append(dst, `,"maxnumber":`...)
	dst = strconv.AppendInt(dst, c.MaxNumber, 10)
	dst = append(dst, `,"salt":`...)
	dst = AppendString(dst, c.Salt)
	dst = append(dst, `,"signature":`...)
	dst = AppendString(dst, c.Signature)
	return append(dst, "}}"...)
}
