package sdk_test

import (
	"net/http/httptest"
	"testing"

	"github.com/indigo-hq/indigo/sdk"
)

func TestErrorShape(t *testing.T) {
	w := httptest.NewRecorder()
	sdk.Error(w, 404, "not_found", `no "x"`)
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/json" ||
		w.Body.String() != `{"error":{"code":"not_found","message":"no \"x\""}}`+"\n" {
		t.Fatalf("got %d %q %q", w.Code, w.Header(), w.Body.String())
	}
}
