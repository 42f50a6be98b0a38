-- A batch's waiting tasks look up their batch every few seconds (NICo
-- firmware batches): by kind and params.batch, without a scan of every task.

CREATE INDEX tasks_batch ON tasks(kind, json_extract(params, '$.batch'));
