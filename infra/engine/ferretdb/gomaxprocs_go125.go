//go:build go1.25

package main

import "log/slog"

// Go 1.25+ sets GOMAXPROCS from the container's CPU quota itself; upstream's setGOMAXPROCS
// exists only behind `//go:build !go1.25`.
func setGOMAXPROCS(*slog.Logger) {}
