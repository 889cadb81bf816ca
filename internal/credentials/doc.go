// Package credentials keeps the tokens that `usher login` obtained, one
// entry per server, in a JSON file only its owner can read (0600 in a
// 0700 directory). It refuses a file that others can read rather than
// use tokens that may have leaked.
package credentials
