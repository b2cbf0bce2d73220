package sdk

import (
	"encoding/json"
	"net/http"
)

// JSON writes v as the response body with the status. Modules answer in
// JSON like the host, so clients parse one format.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Error writes the host's error shape, {"error":{"code","message"}}, so a
// module's errors look like the host's own.
func Error(w http.ResponseWriter, status int, code, message string) {
	JSON(w, status, map[string]map[string]string{"error": {"code": code, "message": message}})
}
