// Package jsontime is the timestamp of Indigo's JSON: RFC 3339 in UTC with
// milliseconds, the same in every answer.
package jsontime

import (
	"encoding/json"
	"time"
)

// Time is a timestamp written as RFC 3339 in UTC with milliseconds.
type Time struct{ time.Time }

const layout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON writes RFC 3339 with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(layout) + `"`), nil
}

// UnmarshalJSON reads RFC 3339.
func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}
