package module_test

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// A module's answer reaches the client with its length, not chunked, at
// any size (net/http chunks an answer past 2 KiB when the handler gives no
// length): the host has the whole body, so the length is the body's own,
// whatever the module claimed.
func TestModuleAnswerKeepsItsLength(t *testing.T) {
	e := start(t, withModules(t, 5*time.Second, modSpec{"testmod", "./core/module/testdata/testmod", ""}))
	_, raw := e.Scoped(e.Org("A"), "testmod:read")
	for _, c := range []struct {
		query string
		n     int
	}{
		{"n=0", 0}, {"n=10", 10}, {"n=3000", 3000}, {"n=70000", 70000},
		{"n=3000&cl=3000", 3000}, {"n=3000&cl=5", 3000}, {"n=3000&cl=nonsense", 3000},
	} {
		req, _ := http.NewRequest("GET", e.Server.URL+"/api/v2/testmod/big?"+c.query, nil)
		req.Header.Set("Authorization", bearer(raw))
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(body) != c.n {
			t.Fatalf("%s: %d, %d bytes (%v)", c.query, resp.StatusCode, len(body), err)
		}
		if resp.ContentLength != int64(c.n) || len(resp.TransferEncoding) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(c.n) {
			t.Errorf("%s: Content-Length %d (%q), Transfer-Encoding %v; want %d, not chunked",
				c.query, resp.ContentLength, resp.Header.Get("Content-Length"), resp.TransferEncoding, c.n)
		}
	}
}
