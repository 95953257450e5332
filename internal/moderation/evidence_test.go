package moderation

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/modstore"
)

func encodeImage(t interface{ Fatal(...any) }, enc func(*bytes.Buffer, image.Image) error) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := range 64 {
		img.Set(x, x%48, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var (
	pngBytes  = encodeImage(panicker{}, func(b *bytes.Buffer, i image.Image) error { return png.Encode(b, i) })
	jpegBytes = encodeImage(panicker{}, func(b *bytes.Buffer, i image.Image) error { return jpeg.Encode(b, i, nil) })
	// The smallest WebP header: RIFF, size, WEBP, a VP8L chunk.
	webpBytes = append([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00"), make([]byte, 10)...)
)

type panicker struct{}

func (panicker) Fatal(args ...any) { panic(args) }

// upload posts body as contentType with token to h and returns the answer.
func upload(h http.Handler, token, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/evidence", bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func wantStatus(t *testing.T, rec *httptest.ResponseRecorder, status int, what string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("%s: status %d, want %d (%s)", what, rec.Code, status, rec.Body)
	}
	if status >= 400 {
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("%s: body %q, want {\"error\": ...}", what, rec.Body)
		}
	}
}

func TestEvidenceEndpoint(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		st := open(t)
		n := newNode(t, st, Config{Clock: clk})
		h := n.EvidenceHandler()
		file := func() Filed {
			t.Helper()
			f, err := n.File(ctx, report(1, 2))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}

		f := file()
		wantStatus(t, upload(h, f.EvidenceToken, "image/jpeg", jpegBytes), http.StatusNoContent, "valid upload")
		ev, err := st.Evidence(ctx, f.ID)
		if err != nil || ev.ContentType != "image/jpeg" || !bytes.Equal(ev.Data, jpegBytes) {
			t.Fatalf("stored evidence %q %d bytes, %v", ev.ContentType, len(ev.Data), err)
		}
		wantStatus(t, upload(h, f.EvidenceToken, "image/png", pngBytes), http.StatusUnauthorized, "token reused")
		if ev, _ := st.Evidence(ctx, f.ID); ev.ContentType != "image/jpeg" {
			t.Fatal("a reused token replaced the image")
		}

		// Each refusal below changes nothing: the token still works after.
		g := file()
		wantStatus(t, upload(h, "", "image/png", pngBytes), http.StatusUnauthorized, "no token")
		wantStatus(t, upload(h, "r000.99999999999.AAAA", "image/png", pngBytes), http.StatusUnauthorized, "forged token")
		forged := strings.Replace(g.EvidenceToken, string(g.ID), string(f.ID), 1)
		wantStatus(t, upload(h, forged, "image/png", pngBytes), http.StatusUnauthorized, "token moved to another report")
		big := append(append([]byte{}, jpegBytes...), make([]byte, 300<<10)...)
		wantStatus(t, upload(h, g.EvidenceToken, "image/jpeg", big), http.StatusRequestEntityTooLarge, "300 KiB")
		// Without a Content-Length the limit is found while reading.
		req := httptest.NewRequest(http.MethodPost, "/api/evidence", struct{ *bytes.Reader }{bytes.NewReader(big)})
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+g.EvidenceToken)
		req.Header.Set("Content-Type", "image/jpeg")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		wantStatus(t, rec, http.StatusRequestEntityTooLarge, "300 KiB, chunked")
		wantStatus(t, upload(h, g.EvidenceToken, "image/jpeg", []byte("just some text, not a picture")), http.StatusUnsupportedMediaType, "text as image/jpeg")
		wantStatus(t, upload(h, g.EvidenceToken, "image/jpeg", pngBytes), http.StatusUnsupportedMediaType, "a PNG as image/jpeg")
		wantStatus(t, upload(h, g.EvidenceToken, "image/gif", []byte("GIF89a")), http.StatusUnsupportedMediaType, "a GIF")
		wantStatus(t, upload(h, g.EvidenceToken, "", pngBytes), http.StatusUnsupportedMediaType, "no content type")
		if _, err := st.Evidence(ctx, g.ID); !errors.Is(err, modstore.ErrNotFound) {
			t.Fatalf("a refused upload stored something: %v", err)
		}
		wantStatus(t, upload(h, g.EvidenceToken, "image/png; charset=binary", pngBytes), http.StatusNoContent, "PNG after refusals")

		w := file()
		wantStatus(t, upload(h, w.EvidenceToken, "image/webp", webpBytes), http.StatusNoContent, "WebP")

		x := file()
		clk.Advance(EvidenceTTL)
		wantStatus(t, upload(h, x.EvidenceToken, "image/jpeg", jpegBytes), http.StatusUnauthorized, "expired token")

		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/evidence", nil))
		wantStatus(t, rec, http.StatusMethodNotAllowed, "GET")

		for reason, want := range map[string]float64{"token": 5, "size": 2, "type": 4} {
			if got := counter(t, n.m.evidenceRefused.WithLabelValues(reason)); got != want {
				t.Errorf("evidence refused{%s} = %v, want %v", reason, got, want)
			}
		}
		if got := counter(t, n.m.evidenceStored); got != 3 {
			t.Errorf("evidence stored = %v, want 3", got)
		}
	})
}

// TestEvidenceTokenAnyNode: a token made by one node is good on another
// node of the same deployment (same store, so same key), and on no other
// deployment.
func TestEvidenceTokenAnyNode(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		a := newNode(t, open(t), Config{})
		b := newNode(t, open(t), Config{})
		f, err := a.File(ctx, report(1, 2))
		if err != nil {
			t.Fatal(err)
		}
		st, err := modstore.OpenSQLite(ctx, t.TempDir())
		other := newNode(t, mustStore(t, st, err), Config{})
		wantStatus(t, upload(other.EvidenceHandler(), f.EvidenceToken, "image/png", pngBytes), http.StatusUnauthorized, "another deployment")
		// With a key set by the operator, nodes sharing it accept each
		// other's tokens and no others.
		key := []byte("0123456789abcdef0123456789abcdef")
		k1 := newNode(t, open(t), Config{Key: key})
		k2 := newNode(t, mustStore(t, st, err), Config{Key: key})
		g, err := k1.File(ctx, report(3, 4))
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, upload(b.EvidenceHandler(), g.EvidenceToken, "image/png", pngBytes), http.StatusUnauthorized, "another key")
		wantStatus(t, upload(k2.EvidenceHandler(), g.EvidenceToken, "image/png", pngBytes), http.StatusUnauthorized, "same key, report in another store")
		wantStatus(t, upload(k1.EvidenceHandler(), g.EvidenceToken, "image/png", pngBytes), http.StatusNoContent, "same key")
		if _, err := New(ctx, Config{Store: st, Key: []byte("short")}); err == nil {
			t.Fatal("a 5-byte key accepted")
		}
		wantStatus(t, upload(b.EvidenceHandler(), f.EvidenceToken, "image/png", pngBytes), http.StatusNoContent, "the other node")
	})
}

// TestEvidenceCap: past the cap the images of the oldest dismissed reports
// make room; when they cannot, the upload is refused with 507, a metric and
// a log line, and the total stays under the cap.
func TestEvidenceCap(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		st := open(t)
		limit := int64(3*len(jpegBytes) + 10) // room for three images
		n := newNode(t, st, Config{Clock: clk, EvidenceMaxBytes: limit})
		h := n.EvidenceHandler()
		var filed []Filed
		for i := range 5 {
			f, err := n.File(ctx, report(10+i, 2))
			if err != nil {
				t.Fatal(err)
			}
			filed = append(filed, f)
			clk.Advance(time.Second)
		}
		for _, f := range filed[:3] {
			wantStatus(t, upload(h, f.EvidenceToken, "image/jpeg", jpegBytes), http.StatusNoContent, "under the cap")
		}
		// Full, nothing dismissed: refused.
		wantStatus(t, upload(h, filed[3].EvidenceToken, "image/jpeg", jpegBytes), http.StatusInsufficientStorage, "cap, nothing dismissed")
		if got := counter(t, n.m.evidenceRefused.WithLabelValues("cap")); got != 1 {
			t.Fatalf("evidence refused{cap} = %v", got)
		}
		// Dismiss the two oldest: the next upload deletes the oldest one's
		// image only.
		for _, f := range filed[:2] {
			if err := st.Dismiss(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
		}
		wantStatus(t, upload(h, filed[3].EvidenceToken, "image/jpeg", jpegBytes), http.StatusNoContent, "room made (same token, nothing was stored)")
		if _, err := st.Evidence(ctx, filed[0].ID); !errors.Is(err, modstore.ErrNotFound) {
			t.Fatal("the oldest dismissed report's image was kept")
		}
		if _, err := st.Evidence(ctx, filed[1].ID); err != nil {
			t.Fatalf("the newer dismissed report's image went too: %v", err)
		}
		if _, err := st.Evidence(ctx, filed[2].ID); err != nil {
			t.Fatalf("an open report's image went: %v", err)
		}
		if got := counter(t, n.m.evidencePruned); got != 1 {
			t.Fatalf("evidence pruned = %v", got)
		}
		total, err := st.EvidenceBytes(ctx)
		if err != nil || total > limit {
			t.Fatalf("stored %d bytes, over the cap %d (%v)", total, limit, err)
		}
	})
}
