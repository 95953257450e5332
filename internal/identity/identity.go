// Package identity is how the server knows a person (docs/moderation-store.md,
// the moderation contract): by network identity — an IPv4 address as /32, an
// IPv6 address as its /64 — and only ever shows or stores that identity as a
// keyed hash. A /64 rather than the full IPv6 address because one home or
// phone gets a whole /64 and picks addresses from it at will; banning one
// address of it would ban nothing.
//
// The types keep raw addresses and hashes apart at compile time: an Identity
// holds the prefix but never prints it, and a Hash is what goes into a store,
// a log line or an API answer.
package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
)

// Identity is a network identity: the /32 of an IPv4 address or the /64 of
// an IPv6 address. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4
// address it maps, so a dual-stack listener sees the same identity as an
// IPv4 one. The zero Identity is not valid.
//
// It formats as "identity(redacted)" in every verb, so that logging one by
// mistake writes no address.
type Identity struct {
	prefix netip.Prefix
}

// FromAddr returns the identity of addr; ok is false for an invalid address.
// A zone (fe80::1%eth0) is ignored: it names an interface of this machine,
// not the peer.
func FromAddr(addr netip.Addr) (id Identity, ok bool) {
	if !addr.IsValid() {
		return Identity{}, false
	}
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil { // cannot happen for a valid address and these sizes
		return Identity{}, false
	}
	return Identity{prefix: p}, true
}

// IsValid reports whether id came from FromAddr with a valid address.
func (id Identity) IsValid() bool { return id.prefix.IsValid() }

// canonical is the text that is hashed: the masked prefix in netip's
// canonical form, "203.0.113.7/32" or "2001:db8:1:2::/64".
func (id Identity) canonical() string { return id.prefix.String() }

const redacted = "identity(redacted)"

// String does not show the address (see the type's comment).
func (id Identity) String() string { return redacted }

// GoString is String for %#v.
func (id Identity) GoString() string { return redacted }

// LogValue keeps the address out of structured logs too.
func (id Identity) LogValue() slog.Value { return slog.StringValue(redacted) }

// Hash is the keyed hash of an identity: HMAC-SHA256(key, identity), hex,
// its first 16 characters (64 bits: collisions between people are unlikely
// in any deployment's lifetime, and the hash stays short in a console).
// It is the only form of an identity that leaves the process.
type Hash string

// HashLen is the length of a Hash in characters.
const HashLen = 16

// ErrBadHash is returned by ParseHash.
var ErrBadHash = errors.New("identity: not a hash (16 lower-case hex digits)")

// ParseHash checks that s has the form of a Hash, for a hash that comes
// from outside (an operator's API request).
func ParseHash(s string) (Hash, error) {
	if len(s) != HashLen {
		return "", ErrBadHash
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", ErrBadHash
		}
	}
	return Hash(s), nil
}

// String returns the hash itself.
func (h Hash) String() string { return string(h) }

// MinKeyBytes is the shortest key a Keyer accepts: shorter keys could be
// guessed, and with the key every IPv4 hash could be reversed by trying all
// 2^32 addresses.
const MinKeyBytes = 16

// Keyer hashes identities with the deployment's key. Every node of a
// deployment must use the same key, or the same person gets different hashes
// on different nodes. It is safe for concurrent use.
type Keyer struct {
	key []byte
}

// NewKeyer returns a Keyer for key, which must be at least MinKeyBytes long.
// The key is copied.
func NewKeyer(key []byte) (*Keyer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("identity: key of %d bytes, need at least %d", len(key), MinKeyBytes)
	}
	return &Keyer{key: append([]byte(nil), key...)}, nil
}

// Hash returns the hash of id. It panics on the zero Identity, which can
// only come from ignoring FromAddr's ok: hashing it would make every
// unknown address one person.
func (k *Keyer) Hash(id Identity) Hash {
	if !id.IsValid() {
		panic("identity: Hash of the zero Identity")
	}
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(id.canonical()))
	var sum [sha256.Size]byte
	return Hash(hex.EncodeToString(m.Sum(sum[:0]))[:HashLen])
}

// HashAddr is Hash(FromAddr(addr)); ok is false for an invalid address.
func (k *Keyer) HashAddr(addr netip.Addr) (h Hash, ok bool) {
	id, ok := FromAddr(addr)
	if !ok {
		return "", false
	}
	return k.Hash(id), true
}
