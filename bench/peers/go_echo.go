// Go TCP echo server (benchmark peer): one goroutine per connection, io.Copy.
// Go sets TCP_NODELAY by default and listens dual-stack on ":port".
// On Linux io.Copy between two TCP sockets splices through a pipe: each
// connection holds 3 file descriptors, so 10 000 idle connections need
// `ulimit -n` above 30 000.
// Usage: go_echo PORT   (0 = let the system choose)
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	port := "7777"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stopOnSigterm()
	fmt.Printf("listening on %d\n", ln.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := ln.Accept()
		if err != nil {
			// e.g. EMFILE: back off instead of spinning, keep serving the others
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c)
		}(conn)
	}
}

func stopOnSigterm() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() { <-ch; os.Exit(0) }()
}
