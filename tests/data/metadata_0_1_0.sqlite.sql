-- A metadata database made by release 0.1.0 (git 6be588a) on SQLite: the schema its `parkcarbon init` created
-- (portal.cli._engine imports carbon.records, portal.alerts, portal.audit and portal.auth, then create_all) and
-- representative rows: the demo park imported, two users, an audit event, an acknowledged warning, a quota plan,
-- an allocation, a green certificate and an output value.  Made by running, in a worktree of 6be588a, the script
-- quoted in docs/migrations.md; dumped with Python's sqlite3 iterdump.  tests/test_migrations.py upgrades it.
BEGIN TRANSACTION;
CREATE TABLE alert_acks (
	park_id VARCHAR(64) NOT NULL, 
	"key" VARCHAR(320) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	enterprise_id VARCHAR(64), 
	acknowledged_by VARCHAR(64) NOT NULL, 
	acknowledged_at DATETIME NOT NULL, 
	PRIMARY KEY (park_id, "key"), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
INSERT INTO "alert_acks" VALUES('demo','silent_meter:M001','silent_meter','E001','admin','2026-03-01 08:00:00.000000');
CREATE TABLE audit_events (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	username VARCHAR(64) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	target VARCHAR(256) NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "audit_events" VALUES(1,'2026-12-03 09:22:28.527905','admin','login','','{"ip": "127.0.0.1"}');
CREATE TABLE carbon_activity_records (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	workshop_id VARCHAR(64), 
	carrier VARCHAR(40) NOT NULL, 
	flow VARCHAR(8) NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	quantity DOUBLE NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	source VARCHAR(128) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
CREATE TABLE carbon_factor_imports (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	imported_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	source_path VARCHAR, 
	source_sha256 VARCHAR(64) NOT NULL, 
	reason TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
CREATE TABLE carbon_factor_overrides (
	id INTEGER NOT NULL, 
	import_id INTEGER NOT NULL, 
	line INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	"key" VARCHAR(40) NOT NULL, 
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
CREATE TABLE carbon_instruments (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	quantity_mwh DOUBLE NOT NULL, 
	period_start DATE NOT NULL, 
	period_end DATE NOT NULL, 
	reference VARCHAR(256) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
INSERT INTO "carbon_instruments" VALUES(1,'demo','E002','gec',200.0,'2026-01-01','2027-01-01','GEC batch 7','2026-12-03 09:22:28.695686','cli');
CREATE TABLE carbon_output_values (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	month DATE NOT NULL, 
	output_value_10k_cny DOUBLE NOT NULL, 
	source VARCHAR(128) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
INSERT INTO "carbon_output_values" VALUES(1,'demo','E001','2026-01-01',812.5,'bill','2026-12-03 09:22:28.731997','cli');
CREATE TABLE carbon_product_output (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	month DATE NOT NULL, 
	product VARCHAR(128) NOT NULL, 
	quantity DOUBLE NOT NULL, 
	unit VARCHAR(32) NOT NULL, 
	workshop_id VARCHAR(64), 
	source VARCHAR(128) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
CREATE TABLE carbon_quota_ledger (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	year INTEGER NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	amount_t DOUBLE NOT NULL, 
	price_cny_per_t DOUBLE, 
	reference VARCHAR(256) NOT NULL, 
	note TEXT NOT NULL, 
	corrects_id INTEGER, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(corrects_id) REFERENCES carbon_quota_ledger (id)
);
INSERT INTO "carbon_quota_ledger" VALUES(1,'demo','E001',2026,'allocation',1200.0,NULL,'allocation 2026','',NULL,'2026-12-03 09:22:28.657554','cli');
CREATE TABLE carbon_quota_plans (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	year INTEGER NOT NULL, 
	method VARCHAR(16) NOT NULL, 
	absolute_t DOUBLE, 
	benchmark_t_per_unit DOUBLE, 
	unit VARCHAR(32) NOT NULL, 
	base_output DOUBLE, 
	pre_share DOUBLE NOT NULL, 
	correction DOUBLE NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
INSERT INTO "carbon_quota_plans" VALUES(1,'demo','E001',2026,'absolute',1200.0,NULL,'',NULL,0.7,1.0,'2026-12-03 09:22:28.577189','cli');
CREATE TABLE carbon_restatements (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	recorded_at DATETIME NOT NULL, 
	actor VARCHAR(128) NOT NULL, 
	reason TEXT NOT NULL, 
	factor_import_id INTEGER, 
	level VARCHAR(16) NOT NULL, 
	enterprise VARCHAR(64), 
	period VARCHAR(16) NOT NULL, 
	metric VARCHAR(40) NOT NULL, 
	old_value DOUBLE, 
	new_value DOUBLE, 
	old_factors TEXT NOT NULL, 
	new_factors TEXT NOT NULL, 
	old_registry VARCHAR(64) NOT NULL, 
	new_registry VARCHAR(64) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(park_id) REFERENCES parks (id), 
	FOREIGN KEY(factor_import_id) REFERENCES carbon_factor_imports (id)
);
CREATE TABLE devices (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	workshop_id VARCHAR(64), 
	name VARCHAR NOT NULL, 
	rated_voltage_v DOUBLE NOT NULL, 
	power_factor DOUBLE NOT NULL, 
	idle_current_a DOUBLE NOT NULL, 
	run_current_a DOUBLE NOT NULL, 
	interval_s INTEGER NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id, workshop_id) REFERENCES workshops (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
INSERT INTO "devices" VALUES('demo','E001-W1-D1','E001','E001-W1','数控等离子切割机 1',380.0,0.85,1.0,8.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E001-W1-D2','E001','E001-W1','数控等离子切割机 2',380.0,0.85,1.0,8.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E001-W2-D1','E001','E001-W2','焊接机器人 1',380.0,0.8,0.5,6.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E001-W2-D2','E001','E001-W2','焊接机器人 2',380.0,0.8,0.5,6.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E001-W2-D3','E001','E001-W2','焊接机器人 3',380.0,0.8,0.5,6.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E002-W2-D1','E002','E002-W2','溢流染色机 1',380.0,0.82,2.0,12.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E002-W2-D2','E002','E002-W2','溢流染色机 2',380.0,0.82,2.0,12.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E003-W2-D1','E003','E003-W2','自动包装机 1',220.0,0.9,0.3,2.5,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E003-W2-D2','E003','E003-W2','自动包装机 2',220.0,0.9,0.3,2.5,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E004-W1-D1','E004','E004-W1','回流焊炉',380.0,0.95,4.0,20.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E004-W1-D2','E004','E004-W1','贴片机 1',380.0,0.9,0.8,3.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W1-D1','E007','E007-W1','冲床 1',380.0,0.8,3.0,15.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W1-D2','E007','E007-W1','冲床 2',380.0,0.8,3.0,15.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W2-D1','E007','E007-W2','加工中心 1',380.0,0.85,1.5,7.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W2-D2','E007','E007-W2','加工中心 2',380.0,0.85,1.5,7.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W2-D3','E007','E007-W2','加工中心 3',380.0,0.85,1.5,7.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E007-W2-D4','E007','E007-W2','数控车床',380.0,0.85,1.0,5.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E008-W1-D1','E008','E008-W1','制冷压缩机组 1',380.0,0.88,2.0,25.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "devices" VALUES('demo','E008-W1-D2','E008','E008-W1','制冷压缩机组 2',380.0,0.88,2.0,25.0,60,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
CREATE TABLE enterprises (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	industry VARCHAR NOT NULL, 
	credit_code VARCHAR NOT NULL, 
	province VARCHAR, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
INSERT INTO "enterprises" VALUES('demo','E001','江南钢构有限公司','Jiangnan Steel Structures Co.','steel_structures','91320000DEMO000001',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E002','恒丰印染有限公司','Hengfeng Textile Dyeing Co.','textile_dyeing','91320000DEMO000002',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E003','禾香食品有限公司','Hexiang Food Co.','food_processing','91320000DEMO000003',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E004','芯联电子科技有限公司','Xinlian Electronics Technology Co.','electronics_assembly','91320000DEMO000004',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E005','华泰化工有限公司','Huatai Chemical Co.','chemicals','91320000DEMO000005',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E006','金叶纸业有限公司','Jinye Paper Co.','paper','91320000DEMO000006',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E007','精工汽车零部件有限公司','Jinggong Auto Parts Co.','auto_parts','91320000DEMO000007',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "enterprises" VALUES('demo','E008','冷链通物流有限公司','Lengliantong Cold-Chain Logistics Co.','cold_chain_logistics','91320000DEMO000008',NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
CREATE TABLE import_runs (
	id INTEGER NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	imported_at DATETIME NOT NULL, 
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
INSERT INTO "import_runs" VALUES(1,'demo','2026-12-03 09:22:28.090162','cli','/tmp/prev-h6/park/data/demo_park.yaml','25b6978a82164f3f12bbd42ca24aa5c62ff09e9baf3a01c124a74794cfdc7ea5',83,0,0,0,0);
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
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id, workshop_id) REFERENCES workshops (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
INSERT INTO "meters" VALUES('demo','E001-M-GAS','E001',NULL,'natural_gas','天然气总表 Natural gas main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E001-M-WATER','E001',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E001-W1-M1','E001','E001-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/1',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E001-W2-M1','E001','E001-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/2',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E001-W3-M1','E001','E001-W3','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/3',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-M-STEAM','E002',NULL,'steam','蒸汽总表 Steam main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-M-WATER','E002',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-W1-M1','E002','E002-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/4',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-W2-M1','E002','E002-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/5',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-W3-M1','E002','E002-W3','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/6',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E002-W3-M2','E002','E002-W3','natural_gas','定型机燃气 Stenter gas',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E003-M-STEAM','E003',NULL,'steam','蒸汽总表 Steam main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E003-M-WATER','E003',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E003-W1-M1','E003','E003-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/7',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E003-W2-M1','E003','E003-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/8',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E004-M-PV','E004',NULL,'pv','屋顶光伏 Rooftop PV',900,'acrel-adl400','modbus://127.0.0.1:5020/9',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E004-W1-M1','E004','E004-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/10',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E004-W2-M1','E004','E004-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/11',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E005-M-GAS','E005',NULL,'natural_gas','天然气总表 Natural gas main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E005-M-STEAM','E005',NULL,'steam','蒸汽总表 Steam main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E005-M-WATER','E005',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E005-W1-M1','E005','E005-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/12',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E005-W2-M1','E005','E005-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/13',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E006-M-STEAM','E006',NULL,'steam','蒸汽总表 Steam main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E006-M-WATER','E006',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E006-W1-M1','E006','E006-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/14',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E006-W2-M1','E006','E006-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/15',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E007-M-GAS','E007',NULL,'natural_gas','热处理燃气 Heat-treatment gas',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E007-M-WATER','E007',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E007-W1-M1','E007','E007-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/16',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E007-W2-M1','E007','E007-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/17',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E007-W3-M1','E007','E007-W3','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/18',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E008-M-DIESEL','E008',NULL,'diesel','叉车及备用发电机柴油 Forklift and standby generator diesel',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E008-M-WATER','E008',NULL,'water','自来水总表 Water main',900,NULL,NULL,1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E008-W1-M1','E008','E008-W1','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/19',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "meters" VALUES('demo','E008-W2-M1','E008','E008-W2','electricity','',900,'acrel-adl400','modbus://127.0.0.1:5020/20',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
CREATE TABLE parks (
	id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	timezone VARCHAR(64) NOT NULL, 
	province VARCHAR, 
	grid_region VARCHAR, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "parks" VALUES('demo','示范工业园区','Demo Industrial Park','Asia/Shanghai','Jiangsu','east_china',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
CREATE TABLE users (
	username VARCHAR(64) NOT NULL, 
	park_id VARCHAR(64) NOT NULL, 
	role VARCHAR(16) NOT NULL, 
	enterprise_id VARCHAR(64), 
	display_name VARCHAR(128) NOT NULL, 
	password_hash VARCHAR(256) NOT NULL, 
	active BOOLEAN NOT NULL, 
	failed_logins INTEGER NOT NULL, 
	locked_until DATETIME, 
	created_at DATETIME NOT NULL, 
	last_login_at DATETIME, 
	PRIMARY KEY (username), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id)
);
INSERT INTO "users" VALUES('admin','demo','admin',NULL,'','scrypt$n=16384,r=8,p=1$oyQGgY9jJfClfIYH1lCb7Q==$Wc59gpcnG2iiiSbIExvc5Sk1l/f3Amn4jSBofFLeze0=',1,0,NULL,'2026-12-03 09:22:28.173637',NULL);
INSERT INTO "users" VALUES('e001','demo','enterprise','E001','','scrypt$n=16384,r=8,p=1$wd7Dej9u53pBVlIWEqtldw==$Oi5q/m4CHammJuFQ7P7YVtSssnZ5cuXsrdrIYbBW2Do=',1,0,NULL,'2026-12-03 09:22:28.374055',NULL);
CREATE TABLE workshops (
	park_id VARCHAR(64) NOT NULL, 
	id VARCHAR(64) NOT NULL, 
	enterprise_id VARCHAR(64) NOT NULL, 
	name VARCHAR NOT NULL, 
	name_en VARCHAR NOT NULL, 
	active BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (park_id, id), 
	FOREIGN KEY(park_id, enterprise_id) REFERENCES enterprises (park_id, id), 
	FOREIGN KEY(park_id) REFERENCES parks (id)
);
INSERT INTO "workshops" VALUES('demo','E001-W1','E001','下料车间','Cutting shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E001-W2','E001','焊接车间','Welding shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E001-W3','E001','涂装车间','Painting shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E002-W1','E002','前处理车间','Pretreatment shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E002-W2','E002','染色车间','Dyeing shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E002-W3','E002','定型车间','Stentering shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E003-W1','E003','蒸煮车间','Cooking shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E003-W2','E003','包装车间','Packaging shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E004-W1','E004','SMT 贴片车间','SMT shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E004-W2','E004','组装测试车间','Assembly and test shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E005-W1','E005','合成车间','Synthesis shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E005-W2','E005','精馏车间','Distillation shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E006-W1','E006','制浆车间','Pulping shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E006-W2','E006','抄纸车间','Paper machine shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E007-W1','E007','冲压车间','Stamping shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E007-W2','E007','机加工车间','Machining shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E007-W3','E007','装配车间','Assembly shop',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E008-W1','E008','冷库','Cold store',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
INSERT INTO "workshops" VALUES('demo','E008-W2','E008','分拣中心','Sorting centre',1,'2026-12-03 09:22:28.090162','2026-12-03 09:22:28.090162');
CREATE INDEX ix_audit_events_at ON audit_events (at);
CREATE TRIGGER carbon_quota_ledger_no_update BEFORE UPDATE ON carbon_quota_ledger BEGIN SELECT RAISE(ABORT, 'carbon_quota_ledger is append-only: record a correcting movement instead'); END;
CREATE TRIGGER carbon_quota_ledger_no_delete BEFORE DELETE ON carbon_quota_ledger BEGIN SELECT RAISE(ABORT, 'carbon_quota_ledger is append-only: record a correcting movement instead'); END;
COMMIT;
