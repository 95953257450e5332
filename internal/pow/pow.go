// Package pow is the proof of work a deployment may ask of a new session
// before its first join or next (docs/protocol.md, "Proof of work"): the
// ALTCHA v1 scheme, so the web client can use altcha-lib's solver and any
// ALTCHA client can talk to us.
//
// A challenge is a random salt, a secret number in [1, maxnumber] and
// challenge = hex(SHA-256(salt + decimal number)), signed with
// signature = hex(HMAC-SHA256(key, challenge)). The client finds the number
// by trying them all (on average maxnumber/2 hashes); the server checks one
// hash and one HMAC, and keeps no state per challenge it hands out: the
// signature proves it issued the challenge, the salt carries its expiry
// (ALTCHA's "?expires=<unix seconds>" parameter) and a replay store
// remembers solutions already used until they expire.
package pow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only hash this package issues and accepts.
const Algorithm = "SHA-256"

// MaxPayloadBytes bounds a solution payload as received: a real one is
// about 330 bytes of base64; anything much larger is not a solution.
const MaxPayloadBytes = 1024

// DefaultTTL is how long a challenge stays solvable. A client solves the
// challenge of its welcome at once but may send its first join minutes
// later (the person reads the page first); after it, the client gets a
// fresh challenge with pow_required and solves again.
const DefaultTTL = 10 * time.Minute

// Challenge is what the server sends (welcome.pow, and error.pow with
// pow_required). Its JSON is ALTCHA's challenge object.
type Challenge struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	MaxNumber int64  `json:"maxnumber"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// Solution is what the client sends back, as base64 of its JSON (ALTCHA's
// payload).
type Solution struct {
	Algorithm string `json:"algorithm"`
	Challenge string `json:"challenge"`
	Number    int64  `json:"number"`
	Salt      string `json:"salt"`
	Signature string `json:"signature"`
}

// Why a solution is refused; the signaling layer counts them by reason.
var (
	ErrMissing   = errors.New("pow: no solution")
	ErrMalformed = errors.New("pow: malformed solution")
	ErrWrong     = errors.New("pow: wrong solution or signature")
	ErrExpired   = errors.New("pow: challenge expired")
	ErrUsed      = errors.New("pow: solution already used")
)

// Reason is a short label for err (one of the errors above), for metrics.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return "missing"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrWrong):
		return "wrong"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrUsed):
		return "used"
	}
	return "error"
}

// Reasons lists every Reason label, so metrics can start them at zero.
var Reasons = []string{"missing", "malformed", "wrong", "expired", "used", "error"}

// Replay remembers used solutions. Use records key for ttl (the time its
// challenge has left, by the verifier's clock) and reports whether it was
// new; every node of a deployment must share one (RedisReplay), or a
// solution could be spent once per node.
type Replay interface {
	Use(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// Options configure a Verifier.
type Options struct {
	// Key signs challenges. Every node of a deployment needs the same key,
	// or a challenge from one node fails on another. At least 16 bytes.
	Key []byte
	// MaxNumber is the difficulty: the secret number is at most this, so
	// a client tries MaxNumber/2 hashes on average. At least 1.
	MaxNumber int64
	// TTL is how long a challenge may be solved; 0: DefaultTTL.
	TTL time.Duration
	// Replay remembers used solutions; required.
	Replay Replay
}

// Verifier issues challenges and verifies solutions. Safe for concurrent use.
type Verifier struct {
	key    []byte
	max    int64
	ttl    time.Duration
	replay Replay
}

// New checks o and returns a Verifier.
func New(o Options) (*Verifier, error) {
	switch {
	case len(o.Key) < 16:
		return nil, errors.New("pow: the HMAC key must be at least 16 bytes")
	case o.MaxNumber < 1:
		return nil, errors.New("pow: maxnumber must be at least 1")
	case o.Replay == nil:
		return nil, errors.New("pow: a replay store is required")
	case o.TTL < 0:
		return nil, errors.New("pow: negative TTL")
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	return &Verifier{key: append([]byte(nil), o.Key...), max: o.MaxNumber, ttl: o.TTL, replay: o.Replay}, nil
}

// MaxNumber is the difficulty the verifier issues.
func (v *Verifier) MaxNumber() int64 { return v.max }

// Challenge makes a fresh challenge that expires TTL after now.
func (v *Verifier) Challenge(now time.Time) (Challenge, error) {
	var raw [12]byte // altcha-lib's default salt length
	if _, err := rand.Read(raw[:]); err != nil {
		return Challenge{}, fmt.Errorf("pow: salt: %w", err)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(v.max))
	if err != nil {
		return Challenge{}, fmt.Errorf("pow: number: %w", err)
	}
	// As altcha-lib: the parameters after "?", then "&" so that no digit of
	// the number can be moved into the salt's last parameter.
	salt := hex.EncodeToString(raw[:]) + "?expires=" + strconv.FormatInt(now.Add(v.ttl).Unix(), 10) + "&"
	ch := hashHex(salt, n.Int64()+1)
	return Challenge{Algorithm: Algorithm, Challenge: ch, MaxNumber: v.max, Salt: salt, Signature: v.sign(ch)}, nil
}

// Verify checks a solution payload (base64 of the Solution's JSON) at time
// now and, if it is good, records it as used so that it works only once on
// every node sharing the replay store. The error is one of ErrMissing,
// ErrMalformed, ErrWrong, ErrExpired, ErrUsed, or the replay store's.
func (v *Verifier) Verify(ctx context.Context, payload string, now time.Time) error {
	s, exp, err := v.check(payload, now)
	if err != nil {
		return err
	}
	fresh, err := v.replay.Use(ctx, s.Challenge, exp.Sub(now))
	switch {
	case err != nil:
		return fmt.Errorf("pow: replay store: %w", err)
	case !fresh:
		return ErrUsed
	}
	return nil
}

// check is Verify without the replay store: it returns the solution and
// when its challenge expires.
func (v *Verifier) check(payload string, now time.Time) (Solution, time.Time, error) {
	if payload == "" {
		return Solution{}, time.Time{}, ErrMissing
	}
	if len(payload) > MaxPayloadBytes {
		return Solution{}, time.Time{}, fmt.Errorf("%w: over %d bytes", ErrMalformed, MaxPayloadBytes)
	}
	raw, err := decodePayload(payload)
	if err != nil {
		return Solution{}, time.Time{}, fmt.Errorf("%w: not base64", ErrMalformed)
	}
	var s Solution
	if err := json.Unmarshal(raw, &s); err != nil {
		return Solution{}, time.Time{}, fmt.Errorf("%w: not the JSON of a solution", ErrMalformed)
	}
	if s.Algorithm != Algorithm {
		return Solution{}, time.Time{}, fmt.Errorf("%w: algorithm %q", ErrMalformed, truncate(s.Algorithm, 16))
	}
	exp, ok := expires(s.Salt)
	if !ok {
		// Our challenges always carry an expiry; without one a solution
		// would be good forever.
		return Solution{}, time.Time{}, fmt.Errorf("%w: salt without expires", ErrMalformed)
	}
	// The hash and signature before the expiry, so that a forged expiry
	// is reported as what it is (the salt is covered by the challenge).
	salt := s.Salt
	if !strings.HasSuffix(salt, "&") {
		salt += "&" // as altcha-lib's verifySolution
	}
	if s.Number < 0 || !equalHex(hashHex(salt, s.Number), s.Challenge) || !equalHex(v.sign(s.Challenge), s.Signature) {
		return Solution{}, time.Time{}, ErrWrong
	}
	if !now.Before(exp) {
		return Solution{}, time.Time{}, ErrExpired
	}
	return s, exp, nil
}

func (v *Verifier) sign(challenge string) string {
	m := hmac.New(sha256.New, v.key)
	m.Write([]byte(challenge))
	return hex.EncodeToString(m.Sum(nil))
}

func hashHex(salt string, n int64) string {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write(strconv.AppendInt(nil, n, 10))
	return hex.EncodeToString(h.Sum(nil))
}

// equalHex compares in constant time (the signature is a secret's output).
func equalHex(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// expires reads the salt's expires parameter (ALTCHA also accepts the
// spelling "expire"), in unix seconds.
func expires(salt string) (time.Time, bool) {
	_, query, ok := strings.Cut(salt, "?")
	if !ok {
		return time.Time{}, false
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return time.Time{}, false
	}
	s := q.Get("expires")
	if s == "" {
		s = q.Get("expire")
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func decodePayload(p string) ([]byte, error) { return base64.StdEncoding.DecodeString(p) }
