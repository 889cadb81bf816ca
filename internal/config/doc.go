// Package config is the configuration of `usher serve`: its settings,
// their defaults, and loading them from a YAML file, USHER_* environment
// variables and flags (each later source wins), then [Config.Validate],
// which lists every problem at once. [Config.Open] reads the files the
// configuration names (rules, TLS, master key) before anything listens.
package config
