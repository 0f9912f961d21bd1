-- The DDL release 0.1.0 (git 6be588a) runs on PostgreSQL when `parkcarbon init` creates the metadata tables:
-- its Base.metadata.create_all with every model module imported, recorded with a mock engine (docs/migrations.md).
-- tests/test_migrations.py runs it on a real server, copies in the rows of metadata_0_1_0.sqlite.sql, upgrades.

CREATE TABLE parks (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	province VARCHAR, 
	grid_region VARCHAR, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE audit_events (
	id SERIAL NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	target VARCHAR(256) NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_audit_events_at ON audit_events (at);

CREATE TABLE enterprises (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	industry VARCHAR NOT NULL, 
	credit_code VARCHAR NOT NULL, 
	province VARCHAR, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE import_runs (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	imported_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR NOT NULL, 
	source_path VARCHAR, 
	source_sha256 VARCHAR(64), 
	added INTEGER NOT NULL, 
	updated INTEGER NOT NULL, 
	reactivated INTEGER NOT NULL, 
	deactivated INTEGER NOT NULL, 
	unchanged INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE carbon_factor_imports (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	imported_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	source_path VARCHAR, 
	source_sha256 VARCHAR(64) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE alert_acks (
	park_id VARCHAR(64) NOT NULL, 
	key VARCHAR(320) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	enterprise_id VARCHAR(64), 
	acknowledged_by VARCHAR(64) NOT NULL, 
	acknowledged_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (park_id, key), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE workshops (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE carbon_factor_overrides (
	id SERIAL NOT NULL, 
	import_id INTEGER NOT NULL, 
	line INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	key VARCHAR(40) NOT NULL, 
	parameter VARCHAR(32) NOT NULL, 
	region VARCHAR(32) NOT NULL, 
	enterprise VARCHAR(64), 
	value VARCHAR(64) NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	valid_from VARCHAR(10) NOT NULL, 
	valid_to VARCHAR(10) NOT NULL, 
	data_year VARCHAR(4) NOT NULL, 
	source TEXT NOT NULL, 
	publication TEXT NOT NULL, 
	published VARCHAR(10) NOT NULL, 
	verified VARCHAR(5) NOT NULL, 
	note TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(import_id) REFERENCES carbon_factor_imports (id)
);

CREATE TABLE carbon_output_values (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	month DATE NOT NULL, 
	output_value_10k_cny DOUBLE PRECISION NOT NULL, 
	source VARCHAR(128) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE carbon_product_output (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	month DATE NOT NULL, 
	product VARCHAR(128) NOT NULL, 
	quantity DOUBLE PRECISION NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	workshop_id VARCHAR(64), 
	source VARCHAR(128) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE carbon_activity_records (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	workshop_id VARCHAR(64), 
	carrier VARCHAR(40) NOT NULL, 
	flow VARCHAR(8) NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	quantity DOUBLE PRECISION NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	source VARCHAR(128) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE carbon_instruments (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	quantity_mwh DOUBLE PRECISION NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	reference VARCHAR(256) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE carbon_quota_plans (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	year INTEGER NOT NULL, 
	method VARCHAR(16) NOT NULL, 
	absolute_t DOUBLE PRECISION, 
	benchmark_t_per_unit DOUBLE PRECISION, 
	unit VARCHAR(32) NOT NULL, 
	base_output DOUBLE PRECISION, 
	pre_share DOUBLE PRECISION NOT NULL, 
	correction DOUBLE PRECISION NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE carbon_quota_ledger (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	year INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	amount_t DOUBLE PRECISION NOT NULL, 
	price_cny_per_t DOUBLE PRECISION, 
	reference VARCHAR(256) NOT NULL, 
	note TEXT NOT NULL, 
	corrects_id INTEGER, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(corrects_id) REFERENCES carbon_quota_ledger (id)
);

CREATE OR REPLACE FUNCTION carbon_quota_ledger_append_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'carbon_quota_ledger is append-only: record a correcting movement instead'; END; $$ LANGUAGE plpgsql;

CREATE TRIGGER carbon_quota_ledger_append_only BEFORE UPDATE OR DELETE ON carbon_quota_ledger FOR EACH ROW EXECUTE FUNCTION carbon_quota_ledger_append_only();

CREATE TABLE carbon_restatements (
	id SERIAL NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	recorded_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	reason TEXT NOT NULL, 
	factor_import_id INTEGER, 
	level VARCHAR(16) NOT NULL, 
	enterprise VARCHAR(64), 
	period VARCHAR(16) NOT NULL, 
	metric VARCHAR(40) NOT NULL, 
	old_value DOUBLE PRECISION, 
	new_value DOUBLE PRECISION, 
	old_factors TEXT NOT NULL, 
	new_factors TEXT NOT NULL, 
	old_registry VARCHAR(64) NOT NULL, 
	new_registry VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id) REFERENCES parks (id), 
	FOREIGN KEY(factor_import_id) REFERENCES carbon_factor_imports (id)
);

CREATE TABLE users (
	username VARCHAR(64) NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	enterprise_id VARCHAR(64), 
	display_name VARCHAR(128) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	active BOOLEAN NOT NULL, 
	failed_logins INTEGER NOT NULL, 
	locked_until TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	last_login_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (username), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);

CREATE TABLE meters (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	workshop_id VARCHAR(64), 
	carrier VARCHAR(16) NOT NULL, 
	name VARCHAR NOT NULL, 
	interval_s INTEGER NOT NULL, 
	model VARCHAR, 
	address VARCHAR, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id, workshop_id) REFERENCES workshops (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);

CREATE TABLE devices (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	workshop_id VARCHAR(64), 
	name VARCHAR NOT NULL, 
	rated_voltage_v DOUBLE PRECISION NOT NULL, 
	power_factor DOUBLE PRECISION NOT NULL, 
	idle_current_a DOUBLE PRECISION NOT NULL, 
	run_current_a DOUBLE PRECISION NOT NULL, 
	interval_s INTEGER NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id, workshop_id) REFERENCES workshops (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
