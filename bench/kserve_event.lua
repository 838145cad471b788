-- wrk script: POST a KServe logger request event in binary mode, a fresh ce-id each time.
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

local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

request = function()
  counter = counter + 1
  wrk.headers["ce-id"] = string.format("bench-%d-%d", thread_id, counter)
  return wrk.format(nil, "/")
end
