"""frappe.db for the stand-in: one PyMySQL connection, explicit transactions, Frappe v15's
commit/rollback callback managers, and the handful of query helpers btu_hooks uses.

Real Frappe: frappe/database/database.py (+ mariadb/database.py, model/db_query.py).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

import pymysql
import pymysql.err

import frappe
from frappe import _dict
from frappe.utils import CallbackManager

# Column and table names are interpolated into SQL (values never are), so they are checked.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")
_ORDER_BY = re.compile(r"^\s*`?[A-Za-z_][A-Za-z0-9_]*`?(\s+(asc|desc))?(\s*,\s*`?[A-Za-z_][A-Za-z0-9_]*`?(\s+(asc|desc))?)*\s*$", re.IGNORECASE)
_OPERATORS = {"=", "!=", "<", ">", "<=", ">=", "like", "not like", "in", "not in"}


def _col(name: str) -> str:
    if not _IDENT.match(name):
        raise frappe.ValidationError(f"invalid column name: {name!r}")
    return f"`{name}`"


def _table(doctype: str) -> str:
    return _col(f"tab{doctype}")


class Database:
    InternalError = pymysql.err.InternalError
    OperationalError = pymysql.err.OperationalError
    ProgrammingError = pymysql.err.ProgrammingError

    def __init__(self, host: str, port: int, user: str | None, password: str, cur_db_name: str | None) -> None:
        self.host, self.port, self.user, self.cur_db_name = host, port, user, cur_db_name
        self._conn: pymysql.connections.Connection = pymysql.connect(
            host=host, port=port, user=user, password=password, database=cur_db_name,
            charset="utf8mb4", autocommit=False, connect_timeout=5,
        )
        self.before_commit = CallbackManager()
        self.after_commit = CallbackManager()
        self.before_rollback = CallbackManager()
        self.after_rollback = CallbackManager()
        self.transaction_writes = 0
        self._columns: dict[str, dict[str, Any]] = {}

    # --- raw SQL ---------------------------------------------------------------------------
    def sql(self, query: str, values: Sequence[Any] | dict[str, Any] = (), as_dict: bool = False,
            as_list: bool = False, pluck: bool = False, **_kw: Any) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(query, values or None)
            if query.lstrip()[:6].lower() in ("insert", "update", "delete"):
                self.transaction_writes += 1
            if cur.description is None:
                return ()
            rows = cur.fetchall()
            if pluck:
                return [r[0] for r in rows]
            if as_dict:
                cols = [d[0] for d in cur.description]
                return [_dict(zip(cols, r)) for r in rows]
            if as_list:
                return [list(r) for r in rows]
            return tuple(rows)

    def sql_list(self, query: str, values: Sequence[Any] = ()) -> list[Any]:
        return list(self.sql(query, values, pluck=True))

    # --- transactions (callback order as in Frappe v15's Database.commit/rollback) ----------
    def begin(self) -> None:
        self.sql("START TRANSACTION")

    def commit(self) -> None:
        self.before_rollback.reset()
        self.after_rollback.reset()
        self.before_commit.run()
        self._conn.commit()
        self.transaction_writes = 0
        self.begin()
        self.after_commit.run()

    def rollback(self, *, save_point: str | None = None, chain: bool = False) -> None:
        if save_point:
            self.sql(f"ROLLBACK TO SAVEPOINT {_col(save_point)}")
            return
        self.before_commit.reset()
        self.after_commit.reset()
        self.before_rollback.run()
        self._conn.rollback()
        self.transaction_writes = 0
        self.begin()
        self.after_rollback.run()

    def close(self) -> None:
        if self._conn.open:
            self._conn.close()

    # --- schema (real: frappe/database/schema.py DbTable / mariadb/schema.py) ------------------
    def sql_ddl(self, query: str) -> None:
        """DDL commits implicitly on MariaDB: Frappe commits first (callbacks run), then runs it."""
        self.commit()
        self.sql(query)
        self._columns.clear()

    def updatedb(self, doctype: str) -> None:
        """Add the columns of the DocType's Custom Fields that its table lacks (ALTER TABLE ADD
        COLUMN, with Frappe's column type for the field type). Frappe never drops a column here."""
        present = set(self.get_table_columns(doctype))
        rows = self.sql("SELECT `fieldname`, `fieldtype`, `default` FROM `tabCustom Field` WHERE `dt` = %s ORDER BY `idx`,"
                        " `creation`", (doctype,), as_dict=True)
        adds = []
        for row in rows:
            definition = column_definition(row.fieldtype, row.default)
            if definition and row.fieldname not in present:
                adds.append(f"ADD COLUMN {_col(row.fieldname)} {definition}")
        if adds:
            self.sql_ddl(f"ALTER TABLE {_table(doctype)} {', '.join(adds)}")

    # --- helpers -------------------------------------------------------------------------------
    def get_table_columns(self, doctype: str) -> list[str]:
        return list(self.get_not_null_defaults(doctype))

    def get_not_null_defaults(self, doctype: str) -> dict[str, Any]:
        """Every column of the DocType's table -> the value None becomes when written (the
        column default of a NOT NULL column, as Frappe writes 0 for an empty Int/Check)."""
        if doctype not in self._columns:
            rows = self.sql(f"SHOW COLUMNS FROM {_table(doctype)}", as_dict=True)
            self._columns[doctype] = {r.Field: (r.Default if r.Null == "NO" else None) for r in rows}
        return self._columns[doctype]

    def exists(self, dt: str, dn: str | dict[str, Any] | None = None, cache: bool = False) -> str | None:
        filters = dn if isinstance(dn, dict) else {"name": dn}
        names = query_list(dt, filters=filters, pluck="name", limit=1, order_by=None)
        return names[0] if names else None

    def get_value(self, doctype: str, filters: Any = None, fieldname: str | Sequence[str] = "name",
                  ignore: Any = None, as_dict: bool = False, debug: bool = False, order_by: str | None = None,
                  cache: bool = False, for_update: bool = False, **_kw: Any) -> Any:
        fields = [fieldname] if isinstance(fieldname, str) else list(fieldname)
        if filters is None or filters == doctype:  # a Single DocType: values live in tabSingles
            row = _dict((f, self.get_single_value(doctype, f)) for f in fields)
        else:
            if not isinstance(filters, dict):
                filters = {"name": filters}
            rows = query_list(doctype, fields=fields, filters=filters, limit=1, order_by=order_by)
            if not rows:
                return None
            row = rows[0]
        if as_dict:
            return row
        return row[fields[0]] if isinstance(fieldname, str) else tuple(row[f] for f in fields)

    def get_values(self, doctype: str, filters: Any = None, fieldname: str | Sequence[str] = "name",
                   as_dict: bool = False, cache: bool = False, order_by: str | None = None, **_kw: Any) -> list[Any]:
        """Every matching row (a list; get_value returns the first)."""
        fields = [fieldname] if isinstance(fieldname, str) else list(fieldname)
        if not isinstance(filters, dict):
            filters = {"name": filters}
        rows = query_list(doctype, fields=fields, filters=filters, order_by=order_by, as_list=not as_dict)
        return [tuple(r) for r in rows] if not as_dict else rows

    def get_single_value(self, doctype: str, fieldname: str, cache: bool = True) -> Any:
        """A value from tabSingles, converted for the Int/Check fields the stand-in knows."""
        from frappe.model.meta import cast_single_value

        rows = self.sql("SELECT `value` FROM `tabSingles` WHERE `doctype` = %s AND `field` = %s", (doctype, fieldname))
        return cast_single_value(doctype, fieldname, rows[0][0] if rows else None)

    def get_all(self, *args: Any, **kwargs: Any) -> list[Any]:
        return frappe.get_all(*args, **kwargs)

    def get_system_setting(self, key: str) -> Any:
        return frappe.get_system_settings(key)

    # --- global defaults (tabDefaultValue, parent __global), e.g. installed_apps ----------------
    def get_global(self, key: str, user: str = "__global") -> Any:
        rows = self.sql("SELECT `defvalue` FROM `tabDefaultValue` WHERE `parent` = %s AND `defkey` = %s"
                        " ORDER BY `creation`", (user, key))
        return rows[0][0] if rows else None

    def set_global(self, key: str, val: Any, user: str = "__global") -> None:
        """As frappe.defaults.set_default: replace the row(s) of this key with one new row."""
        self.sql("DELETE FROM `tabDefaultValue` WHERE `parent` = %s AND `defkey` = %s", (user, key))
        now = frappe.utils.now_datetime()
        self.sql(
            "INSERT INTO `tabDefaultValue` (`name`, `creation`, `modified`, `modified_by`, `owner`, `parent`,"
            " `parentfield`, `parenttype`, `defkey`, `defvalue`) VALUES (%s, %s, %s, %s, %s, %s, 'system_defaults',"
            " '__default', %s, %s)",
            (secrets.token_hex(5), now, now, frappe.session.user, frappe.session.user, user, key, val),
        )

    def set_value(self, dt: str, dn: str | dict[str, Any] | None, field: str | dict[str, Any], val: Any = None,
                  modified: Any = None, modified_by: str | None = None, update_modified: bool = True,
                  debug: bool = False, **_kw: Any) -> None:
        values = dict(field) if isinstance(field, dict) else {field: val}
        if update_modified:
            values["modified"] = modified or frappe.utils.now_datetime()
            values["modified_by"] = modified_by or frappe.session.user
        if dn is None or dn == dt:  # a Single DocType
            for f, v in values.items():
                self.sql("DELETE FROM `tabSingles` WHERE `doctype` = %s AND `field` = %s", (dt, f))
                self.sql("INSERT INTO `tabSingles` (`doctype`, `field`, `value`) VALUES (%s, %s, %s)", (dt, f, v))
            return
        where, params = _where(dn if isinstance(dn, dict) else {"name": dn})
        assignments = ", ".join(f"{_col(f)} = %s" for f in values)
        self.sql(f"UPDATE {_table(dt)} SET {assignments}{where}", [*values.values(), *params])


# Frappe v15's MariaDB column types (frappe/database/mariadb/database.py type_map); the field
# types missing here (Section Break, Column Break, HTML, Button, Table...) have no column.
_COLUMN_TYPES = {
    "Data": "varchar(140)", "Link": "varchar(140)", "Select": "varchar(140)", "Dynamic Link": "varchar(140)",
    "Small Text": "text", "Text": "text", "Long Text": "longtext", "Code": "longtext", "Datetime": "datetime(6)",
    "Date": "date", "Time": "time(6)", "Int": "int(11)", "Check": "int(1)", "Float": "decimal(21,9)",
}


def column_definition(fieldtype: str, default: Any = None) -> str | None:
    """The column Frappe creates for a field: Int/Check NOT NULL DEFAULT <default or 0>; other
    types nullable, with the field's default as column default."""
    column = _COLUMN_TYPES.get(fieldtype)
    if column is None:
        return None
    if fieldtype in ("Int", "Check"):
        return f"{column} NOT NULL DEFAULT {int(default or 0)}"
    if fieldtype == "Float":
        return f"{column} NOT NULL DEFAULT {float(default or 0)}"
    if default not in (None, ""):
        escaped = str(default).replace("\\", "\\\\").replace("'", "''")
        return f"{column} DEFAULT '{escaped}'"
    return column


def _where(filters: Any) -> tuple[str, list[Any]]:
    """WHERE clause from Frappe-style filters: {field: value | [op, value]} or
    [[field, op, value], ...] (a leading doctype element is accepted and ignored)."""
    if not filters:
        return "", []
    items: list[tuple[str, str, Any]] = []
    if isinstance(filters, dict):
        for key, cond in filters.items():
            if isinstance(cond, (list, tuple)):
                items.append((key, str(cond[0]).lower(), cond[1]))
            else:
                items.append((key, "=", cond))
    else:
        for f in filters:
            f = list(f)[-3:]
            items.append((f[0], str(f[1]).lower(), f[2]))
    clauses, params = [], []
    for key, op, value in items:
        if op not in _OPERATORS:
            raise frappe.ValidationError(f"unsupported filter operator: {op!r}")
        if op in ("in", "not in"):
            values = list(value) if not isinstance(value, str) else [v.strip() for v in value.split(",")]
            if not values:
                clauses.append("1=0" if op == "in" else "1=1")
                continue
            clauses.append(f"{_col(key)} {op} ({', '.join(['%s'] * len(values))})")
            params.extend(values)
        else:
            clauses.append(f"{_col(key)} {op} %s")
            params.append(value)
    return " WHERE " + " AND ".join(clauses), params


def query_list(doctype: str, fields: Sequence[str] | str | None = None, filters: Any = None,
               order_by: str | None = "modified desc", limit_page_length: int | None = None,
               limit: int | None = None, pluck: str | None = None, as_list: bool = False,
               **_kw: Any) -> list[Any]:
    """frappe.get_list/get_all without permissions: fields, filters, order_by, limit, pluck."""
    if pluck:
        fields = [pluck]
    if isinstance(fields, str):
        fields = [f.strip() for f in fields.split(",")]
    fields = list(fields or ["name"])
    cols = "*" if fields == ["*"] else ", ".join(_col(f) for f in fields)
    where, params = _where(filters)
    query = f"SELECT {cols} FROM {_table(doctype)}{where}"
    if order_by:
        if not _ORDER_BY.match(order_by):
            raise frappe.ValidationError(f"invalid order_by: {order_by!r}")
        query += f" ORDER BY {order_by}"
    limit = limit or limit_page_length
    if limit:
        query += f" LIMIT {int(limit)}"
    rows = frappe.db.sql(query, params, as_dict=not as_list, as_list=as_list)
    return [r[pluck] for r in rows] if pluck else list(rows)

