package pow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
)

// ErrUnsolvable: no number up to maxnumber gives the challenge.
var ErrUnsolvable = errors.New("pow: no number up to maxnumber solves the challenge")

// Solve finds the number of c by trying 0, 1, … maxnumber, as ALTCHA's
// solvers do, and returns the payload to send (base64 of the solution's
// JSON) and the number of hashes it took. It is for Go clients (the test
// client, the load generator); it stops early when ctx ends.
func Solve(ctx context.Context, c Challenge) (payload string, tries int64, err error) {
	if c.Algorithm != Algorithm {
		return "", 0, errors.New("pow: unsupported algorithm " + strconv.Quote(c.Algorithm))
	}
	want, err := hex.DecodeString(c.Challenge)
	if err != nil || len(want) != sha256.Size {
		return "", 0, errors.New("pow: challenge is not a hex SHA-256")
	}
	buf := make([]byte, 0, len(c.Salt)+20)
	buf = append(buf, c.Salt...)
	for n := int64(0); n <= c.MaxNumber; n++ {
		if n&0xffff == 0 && ctx.Err() != nil {
			return "", n, ctx.Err()
		}
		sum := sha256.Sum256(strconv.AppendInt(buf, n, 10))
		if string(sum[:]) == string(want) {
			return Payload(Solution{Algorithm: c.Algorithm, Challenge: c.Challenge, Number: n, Salt: c.Salt, Signature: c.Signature}), n + 1, nil
		}
	}
	return "", c.MaxNumber + 1, ErrUnsolvable
}

// Payload encodes s as a client sends it, byte for byte as altcha-lib's
// clients do (JSON.stringify: "&" in the salt is not escaped).
func Payload(s Solution) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil { // strings and an int: cannot fail
		panic("pow: encoding solution: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}
