-- A BMC that keeps a one-time boot override as Continuous: the override
-- Slipway set there, to clear once the machine has netbooted (so that no
-- persistent override of Slipway's outlives the provisioning).

ALTER TABLE bmcs ADD COLUMN override_pending TEXT NOT NULL DEFAULT '';
