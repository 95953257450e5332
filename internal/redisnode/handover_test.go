package redisnode

import (
	"errors"
	"testing"
)

func TestHandoverRoundTrip(t *testing.T) {
	in := handoverRequest{Session: "S3SSION", Token: "tok+/=en", Requester: "node2"}
	b, err := encodeHandover(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "S3SSION\ntok+/=en\nnode2" {
		t.Fatalf("wire %q", b) // the format other nodes of a deployment read
	}
	out, err := decodeHandover(b)
	if err != nil || out != in {
		t.Fatalf("decoded %+v %v, want %+v", out, err, in)
	}
}

func TestHandoverRefusesAmbiguousFields(t *testing.T) {
	for _, r := range []handoverRequest{
		{Session: "s\nx", Token: "t", Requester: "n"},
		{Session: "s", Token: "t\n", Requester: "n"},
		{Session: "s", Token: "t", Requester: ""},
	} {
		if _, err := encodeHandover(r); !errors.Is(err, errBadHandover) {
			t.Errorf("encode %+v: %v", r, err)
		}
	}
}

func TestHandoverDecodeRejectsMalformed(t *testing.T) {
	for _, b := range []string{"", "s\nt", "s\nt\nn\nextra", "\nt\nn", "s\n\nn", "s\nt\n"} {
		if r, err := decodeHandover([]byte(b)); !errors.Is(err, errBadHandover) {
			t.Errorf("decode %q: %+v %v", b, r, err)
		}
	}
}
