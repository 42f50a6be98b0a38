-- A DPU (a SmartNIC with its own BMC and operating system) is a machine of
-- its own that names the host it sits in: NICo reprovisions a host's DPUs.

ALTER TABLE machines ADD COLUMN dpu_of TEXT NOT NULL DEFAULT '';
