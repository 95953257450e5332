// Package turnserver holds everything NAT traversal needs on the server side:
// short-lived TURN credentials by the TURN REST API scheme (shared with an
// external coturn configured with use-auth-secret), the welcome.iceServers
// list, the relay peer policy that keeps a TURN relay from becoming an SSRF
// hole, and an embedded TURN server built on pion/turn.
package turnserver

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // SHA-1 is what the TURN REST API and coturn specify.
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/turn/v5"

	"github.com/strangerchat/stranger/internal/clock"
)

// Mint returns TURN credentials valid until expiry for one session, by the
// TURN REST API scheme (draft-uberti-behave-turn-rest-00 §2.2) that coturn
// implements with use-auth-secret / static-auth-secret:
//
//	username   = "<unix expiry>:<session id>"
//	credential = base64(HMAC-SHA1(secret, username))
func Mint(secret, sessionID string, expiry time.Time) (username, credential string) {
	username = strconv.FormatInt(expiry.Unix(), 10) + ":" + sessionID
	return username, restPassword(secret, username)
}

func restPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username)) // hash.Hash.Write never fails.
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Errors returned by Verifier.Check; the auth handler turns any of them into
// a 401 for the client.
var (
	ErrMalformedUsername = errors.New("turn username is not <unix expiry>:<session id>")
	ErrExpired           = errors.New("turn credential expired")
	ErrRealm             = errors.New("turn realm does not match")
)

// Verifier checks TURN REST API credentials on the embedded server.
//
// A TURN server never sees the password itself: the client proves it knows
// it with MESSAGE-INTEGRITY keyed by MD5(username ":" realm ":" password)
// (RFC 5389 §15.4). So the verifier's job is to refuse what it can judge from
// the username and realm (format, expiry, realm), and to hand pion the key
// it derives from the shared secret; a forged credential then fails pion's
// MESSAGE-INTEGRITY check.
type Verifier struct {
	Secret string
	Realm  string
	Clock  clock.Clock // nil means the wall clock
}

// Check validates username and realm at the verifier's current time and
// returns the session id (the allocation's user id, so quotas count per
// session even when a resumed session presents renewed credentials) and the
// long-term key.
func (v Verifier) Check(username, realm string) (sessionID string, key []byte, err error) {
	if realm != v.Realm {
		return "", nil, fmt.Errorf("%w: got %q", ErrRealm, realm)
	}
	expiryText, session, ok := strings.Cut(username, ":")
	if !ok || session == "" {
		return "", nil, fmt.Errorf("%w: %q", ErrMalformedUsername, username)
	}
	expiry, err := strconv.ParseInt(expiryText, 10, 64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %q", ErrMalformedUsername, username)
	}
	now := time.Now()
	if v.Clock != nil {
		now = v.Clock.Now()
	}
	// coturn refuses a timestamp equal to now as well; match it.
	if expiry <= now.Unix() {
		return "", nil, fmt.Errorf("%w: %q at %d", ErrExpired, username, now.Unix())
	}
	return session, turn.GenerateAuthKey(username, realm, restPassword(v.Secret, username)), nil
}

// AuthHandler adapts Check to pion's callback. refused is called (if not
// nil) with every refusal, for logging and counting.
func (v Verifier) AuthHandler(refused func(username string, err error)) turn.AuthHandler {
	return func(ra *turn.RequestAttributes) (string, []byte, bool) {
		session, key, err := v.Check(ra.Username, ra.Realm)
		if err != nil {
			if refused != nil {
				refused(ra.Username, err)
			}
			return "", nil, false
		}
		return session, key, true
	}
}
