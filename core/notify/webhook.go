package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderEvent     = "X-Indigo-Event"
	HeaderDelivery  = "X-Indigo-Delivery"
	HeaderTimestamp = "X-Indigo-Timestamp"
	HeaderSignature = "X-Indigo-Signature"
)

// WebhookTimeout bounds one webhook request.
const WebhookTimeout = 10 * time.Second

// Webhook POSTs each event as JSON to URL, signed with Secret:
//
//	X-Indigo-Event:     the event type
//	X-Indigo-Delivery:  the event id (the same on every retry)
//	X-Indigo-Timestamp: Unix seconds when the request was signed
//	X-Indigo-Signature: sha256=<hex HMAC-SHA256(Secret, timestamp + "." + body)>
//
// A 2xx answer delivers the event; any other answer, a redirect included,
// or a network error is retried. Receivers check the signature with
// VerifySignature, should refuse old timestamps, and deduplicate on the
// delivery id.
type Webhook struct {
	URL    string
	Secret string
	// Client sends the requests; nil uses one with a 10 s timeout that
	// does not follow redirects.
	Client *http.Client
}

var defaultWebhookClient = &http.Client{
	Timeout:       WebhookTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

// StatusError is a receiver's answer other than 2xx.
type StatusError struct {
	Code int
	Body string // the start of the answer, for the delivery log
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("webhook answered %d", e.Code)
	}
	return fmt.Sprintf("webhook answered %d: %s", e.Code, e.Body)
}

// Notify sends one event.
func (w *Webhook) Notify(ctx context.Context, ev Event) error {
	if w.Secret == "" {
		return errors.New("webhook has no secret")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	// wall clock: not the dispatcher's; receivers compare it with theirs.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "indigo-webhook/1")
	req.Header.Set(HeaderEvent, ev.Type)
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = defaultWebhookClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reportStatus(ctx, resp.StatusCode)
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(strings.ToValidUTF8(string(snippet), ""))}
	}
	return nil
}

// Sign is the X-Indigo-Signature value of a body sent at timestamp (Unix
// seconds, as in X-Indigo-Timestamp).
func Sign(secret, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature reports whether header (X-Indigo-Signature) signs body
// sent at timestamp (X-Indigo-Timestamp) with secret. The comparison takes
// constant time. An empty secret verifies nothing. It does not judge the
// timestamp's age: receivers should also refuse old timestamps (say, older
// than five minutes) to stop replays.
func VerifySignature(secret string, timestamp string, body []byte, header string) bool {
	if secret == "" || timestamp == "" {
		return false
	}
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, mac(secret, timestamp, body))
}

// LogNotifier writes each event to the log at Info.
type LogNotifier struct {
	Log *slog.Logger // slog.Default when nil
}

// Name is "log".
func (l LogNotifier) Name() string { return "log" }

// Notify logs the event.
func (l LogNotifier) Notify(ctx context.Context, ev Event) error {
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	log.InfoContext(ctx, "key event", "type", ev.Type, "event_id", ev.ID, "key_id", ev.Key.ID, "org_id", ev.OrgID,
		"prefix", ev.Key.Prefix, "last4", ev.Key.Last4, "actor", ev.Actor)
	return nil
}
