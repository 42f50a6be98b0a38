-- Whether a machine's tray was given by whoever lists it. A site design
-- places a node in a rack, never in a tray, and a discovered machine sits
-- nowhere known: for them tray 0 is not a slot. Until now the tray could
-- not say so, and a design relisting a configured machine erased the tray
-- the configuration had given it.
ALTER TABLE machines ADD COLUMN tray_known INTEGER NOT NULL DEFAULT 0;
UPDATE machines SET tray_known = 1 WHERE rack_id != '' AND source NOT IN ('design', 'discovered');
