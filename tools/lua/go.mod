// Runs the Argo CD health checks and resource actions of manifests/argocd in gopher-lua,
// the Lua VM Argo CD embeds, against their test cases. See build.sh and main.go.
module github.com/modelrollout/modelrollout/tools/lua

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.2
	layeh.com/gopher-json v0.0.0-20190114024228-97fed8db8427
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
