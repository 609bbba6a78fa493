// Third-party CRDs the route routers' tests install (never committed: fetch.sh reads them
// from these modules in the Go module cache).
module modelrollout.io/tools/peer-crds

go 1.26

require (
	istio.io/api v1.32.0
	sigs.k8s.io/gateway-api v1.6.3
)
