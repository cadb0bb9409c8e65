// Go UDP echo server (benchmark peer): ReadFrom/WriteTo loop, dual-stack.
// Usage: go_udp PORT   (0 = let the system choose)
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	port := "7777"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	pc, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stopOnSigterm()
	fmt.Printf("listening on %d\n", pc.LocalAddr().(*net.UDPAddr).Port)
	buf := make([]byte, 65536)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		pc.WriteTo(buf[:n], addr)
	}
}

func stopOnSigterm() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() { <-ch; os.Exit(0) }()
}
