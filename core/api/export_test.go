package api

// StatusOf exposes apiError to the external tests.
var StatusOf = apiError
