package moderation

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strangerchat/stranger/internal/modstore"
)

// MaxEvidenceBytes is the largest evidence image accepted (protocol 1.1).
const MaxEvidenceBytes = 256 << 10

// An evidence token is "<report id>.<expiry, Unix seconds>.<MAC>", the MAC
// being HMAC-SHA256 over the first two parts with a key derived from the
// deployment key. Any node can verify it without shared memory; the store
// makes it single-use (one image per report).
func (s *Service) evidenceToken(id modstore.ReportID, expires time.Time) string {
	payload := string(id) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.tokenMAC(payload))
}

func (s *Service) tokenMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// verifyToken returns the report id of a genuine, unexpired token.
func (s *Service) verifyToken(tok string, now time.Time) (modstore.ReportID, bool) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := tok[:i], tok[i+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.tokenMAC(payload)) {
		return "", false
	}
	id, exp, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	expires, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || now.Unix() >= expires {
		return "", false
	}
	return modstore.ReportID(id), true
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// imageMagic says whether data starts as an image of contentType must.
var imageMagic = map[string]func(data []byte) bool{
	"image/jpeg": func(d []byte) bool { return bytes.HasPrefix(d, []byte{0xFF, 0xD8, 0xFF}) },
	"image/png":  func(d []byte) bool { return bytes.HasPrefix(d, []byte("\x89PNG\r\n\x1a\n")) },
	"image/webp": func(d []byte) bool {
		return len(d) >= 12 && bytes.Equal(d[:4], []byte("RIFF")) && bytes.Equal(d[8:12], []byte("WEBP"))
	},
}

// EvidenceHandler serves POST /api/evidence (protocol 1.1): one image per
// evidence token. It answers 204 stored; 401 unknown, used or expired
// token; 413 over MaxEvidenceBytes; 415 not a JPEG, PNG or WebP whose bytes
// match its Content-Type; 507 when the evidence cap is reached and no
// dismissed report's image is left to make room.
func (s *Service) EvidenceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "POST an image")
			return
		}
		refuse := func(status int, reason, msg string) {
			s.m.evidenceRefused.WithLabelValues(reason).Inc()
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			writeError(w, status, msg)
		}
		tok, ok := bearer(r)
		if !ok {
			refuse(http.StatusUnauthorized, "token", "an evidence token is required (Authorization: Bearer)")
			return
		}
		id, ok := s.verifyToken(tok, s.clock.Now())
		if !ok {
			refuse(http.StatusUnauthorized, "token", "unknown or expired evidence token")
			return
		}
		if r.ContentLength > MaxEvidenceBytes {
			refuse(http.StatusRequestEntityTooLarge, "size", "the image is larger than 256 KiB")
			return
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		isImage := imageMagic[mt]
		if err != nil || isImage == nil {
			refuse(http.StatusUnsupportedMediaType, "type", "the image must be image/jpeg, image/png or image/webp")
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEvidenceBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			refuse(http.StatusRequestEntityTooLarge, "size", "the image is larger than 256 KiB")
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "reading the image failed")
			return
		case !isImage(data):
			refuse(http.StatusUnsupportedMediaType, "type", "the body is not a "+mt+" image")
			return
		}
		status, msg := s.storeEvidence(r, id, modstore.Evidence{ContentType: mt, Data: data})
		if status != http.StatusNoContent {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			writeError(w, status, msg)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// storeEvidence stores ev within the cap: past it, the images of the
// oldest dismissed reports make room; if they cannot, the upload is
// refused. One upload at a time per node keeps a node's uploads from
// overshooting the cap together; nodes sharing a database may overshoot it
// by at most one image each.
func (s *Service) storeEvidence(r *http.Request, id modstore.ReportID, ev modstore.Evidence) (int, string) {
	ctx := r.Context()
	s.evidenceMu.Lock()
	defer s.evidenceMu.Unlock()
	total, err := s.store.EvidenceBytes(ctx)
	if err != nil {
		s.log.Error("moderation: evidence size", "err", err)
		return http.StatusInternalServerError, "the evidence could not be stored"
	}
	if over := total + int64(len(ev.Data)) - s.cfg.EvidenceMaxBytes; over > 0 {
		freed, n, err := s.store.PruneDismissedEvidence(ctx, over)
		if err != nil {
			s.log.Error("moderation: pruning evidence", "err", err)
			return http.StatusInternalServerError, "the evidence could not be stored"
		}
		s.m.evidencePruned.Add(float64(n))
		if n > 0 {
			s.log.Info("moderation: evidence cap reached; deleted the images of the oldest dismissed reports",
				"images", n, "bytes", freed)
		}
		if freed < over {
			s.m.evidenceRefused.WithLabelValues("cap").Inc()
			s.log.Warn("moderation: evidence refused: the evidence cap is reached and no dismissed report's image is left to delete",
				"report", id, "cap_bytes", s.cfg.EvidenceMaxBytes, "stored_bytes", total-freed)
			return http.StatusInsufficientStorage, "evidence storage is full; the report itself is kept"
		}
	}
	err = s.store.PutEvidence(ctx, id, ev)
	switch {
	case errors.Is(err, modstore.ErrEvidenceExists), errors.Is(err, modstore.ErrNotFound):
		// Used already, or its report is gone (swept): the token is spent.
		s.m.evidenceRefused.WithLabelValues("token").Inc()
		return http.StatusUnauthorized, "the evidence token was used already"
	case err != nil:
		s.log.Error("moderation: storing evidence", "report", id, "err", err)
		return http.StatusInternalServerError, "the evidence could not be stored"
	}
	s.m.evidenceStored.Inc()
	return http.StatusNoContent, ""
}
