-- wrk script: POST a KServe logger request event in binary mode, a fresh ce-id each time.
-- An optional script argument prefixes the ids, so that two runs against one topic never
-- repeat an id:  wrk ... -s bench/kserve_event.lua http://127.0.0.1:8080/ -- warmup
wrk.method = "POST"
wrk.body = '{"instances": [[6.3, 2.5, 4.9, 1.5], [5.1, 3.5, 1.4, 0.2]]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["ce-specversion"] = "1.0"
wrk.headers["ce-source"] = "http://localhost:9081/"
wrk.headers["ce-type"] = "org.kubeflow.serving.inference.request"
wrk.headers["ce-time"] = "2026-11-25T12:00:00.000000Z"
wrk.headers["ce-inferenceservicename"] = "iris"
wrk.headers["ce-namespace"] = "default"
wrk.headers["ce-component"] = "predictor"
wrk.headers["ce-endpoint"] = "default"
wrk.headers["ce-metadata"] = '{"Content-Type":["application/json"]}'

local prefix = "bench"
local counter = 0
local next_thread = 0

-- Runs in the main state once per thread; thread:set makes a global in that thread's state.
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  if args[1] then
    prefix = args[1]
  end
end

request = function()
  counter = counter + 1
  wrk.headers["ce-id"] = string.format("%s-%d-%d", prefix, thread_index, counter)
  return wrk.format(nil, "/")
end
