-- Resume: set modelrollout.io/paused to "false" rather than deleting it. Argo CD turns an
-- emptied annotations table back into the original map, so a deletion of the only
-- annotation would be lost; "false" always reaches the API server.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrollout.io/paused"] = "false"
return obj
