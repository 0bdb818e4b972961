-- HTTP intake moved to the intake service, which keeps its own record of received documents.
DROP TABLE IF EXISTS {schema}.intake;
