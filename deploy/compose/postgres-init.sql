-- One database per service (each service owns its tables); run once by the postgres image on an empty volume.
CREATE DATABASE gateway;
CREATE DATABASE chat;
CREATE DATABASE retrieval;
CREATE DATABASE integrations;
CREATE DATABASE analytics;
