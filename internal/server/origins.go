package server

import (
	"net/url"
	"strings"
)

// originHosts turns configured origins (https://app.example.com) into the host
// patterns coder/websocket matches the Origin header against.
func originHosts(origins []string) []string {
	var hosts []string
	for _, o := range origins {
		if o == "*" {
			hosts = append(hosts, "*")
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Host == "" {
			hosts = append(hosts, strings.TrimSuffix(o, "/"))
			continue
		}
		hosts = append(hosts, u.Host)
	}
	return hosts
}
