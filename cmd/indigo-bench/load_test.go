package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRawWorkerBodies reads a small answer (with a Content-Length) and a
// 16 KiB one (chunked, as net/http sends it without one) on one
// keep-alive connection, and refuses a wrong body.
func TestRawWorkerBodies(t *testing.T) {
	small, big := []byte(`{"ok":true}`+"\n"), bytes.Repeat([]byte("x"), 16<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write(big)
			return
		}
		_, _ = w.Write(small)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		path string
		want []byte
		ok   bool
	}{
		{"/small", small, true},
		{"/big", big, true},
		{"/big", append(bytes.Clone(big[1:]), 'y'), false},
	} {
		req := []byte("GET " + tc.path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
		w, err := newRawWorker(addr, req, tc.want)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := w.do(); (err == nil) != tc.ok {
				t.Fatalf("%s: %v", tc.path, err)
			}
			if !tc.ok {
				break
			}
		}
		w.close()
	}
}
