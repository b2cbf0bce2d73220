package apikey

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

func (s *Service) checkScopes(scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	seen := map[string]bool{}
	for _, id := range scopes {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if unknown := s.scopes.Unknown(out); len(unknown) > 0 {
		return nil, unprocessable("unknown_scope", "unknown scope: %s", strings.Join(unknown, ", "))
	}
	sort.Strings(out)
	return out, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 {
		return "", unprocessable("invalid_name", "name must be 1 to 128 characters")
	}
	return name, nil
}

func checkMetadata(m json.RawMessage) (string, error) {
	if len(m) == 0 || string(m) == "null" {
		return "{}", nil
	}
	if len(m) > MaxMetadata {
		return "", unprocessable("invalid_metadata", "metadata must be at most %d bytes", MaxMetadata)
	}
	var obj map[string]any
	if err := json.Unmarshal(m, &obj); err != nil || obj == nil {
		return "", unprocessable("invalid_metadata", "metadata must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m); err != nil {
		return "", unprocessable("invalid_metadata", "metadata must be a JSON object")
	}
	return buf.String(), nil
}

func checkRateLimit(rl *RateLimit) error {
	if rl == nil {
		return nil
	}
	if rl.Limit < 1 || rl.WindowSeconds < 1 || rl.WindowSeconds > 31*86400 {
		return unprocessable("invalid_rate_limit", "rate_limit needs limit >= 1 and window_seconds between 1 and 2678400")
	}
	return nil
}

// MaxSeconds bounds every duration given in seconds (an expiry, a roll's
// grace, a refill interval): 100 years of 365 days, well inside the 292
// years of a time.Duration, past which the conversion wrapped around.
const MaxSeconds = 100 * 365 * 24 * 60 * 60

// TooLarge is the message for a duration in seconds above MaxSeconds.
func TooLarge(field string) string {
	return fmt.Sprintf("%s is too large: at most %d seconds (100 years)", field, MaxSeconds)
}

func checkQuota(remaining *int64, refill *Refill) error {
	if remaining != nil && *remaining < 0 {
		return unprocessable("invalid_remaining", "remaining must not be negative")
	}
	if refill != nil && (refill.Amount < 1 || refill.IntervalSeconds < 1) {
		return unprocessable("invalid_refill", "refill needs amount >= 1 and interval_seconds >= 1")
	}
	if refill != nil && refill.IntervalSeconds > MaxSeconds {
		return unprocessable("invalid_refill", "%s", TooLarge("refill.interval_seconds"))
	}
	return nil
}

func scopesColumn(scopes []string, superkey bool) sql.NullString {
	if superkey {
		return sql.NullString{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	b, _ := json.Marshal(scopes)
	return sql.NullString{String: string(b), Valid: true}
}

func keyScopesForAudit(scopes []string, superkey bool) any {
	if superkey {
		return nil
	}
	return scopes
}

// Opt is a JSON field that distinguishes absent, null and a value.
type Opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

// UnmarshalJSON records that the field was present.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.V)
}
