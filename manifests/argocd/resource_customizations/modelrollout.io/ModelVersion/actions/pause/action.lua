-- Pause: the operator holds an in-flight version where it is while
-- modelrollout.io/paused is a yes word.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["modelrollout.io/paused"] = "true"
return obj
