/* Rows of a RowsWidget: "Add another" copies the last row, emptied; "Remove" drops a row (the last one is only
   emptied, so that one is always there to fill in). Without this script the page still has one empty row. */
'use strict';
{
    const empty = (row) => {
        row.querySelectorAll('input, select, textarea').forEach((input) => {
            if (input.tagName === 'SELECT') {
                input.selectedIndex = 0;
            } else {
                input.value = '';
            }
        });
        row.classList.remove('rows-invalid');
        row.querySelectorAll('.errorlist').forEach((list) => list.remove());
    };

    const addRemoveButton = (row) => {
        const note = row.querySelector('.rows-note');
        if (!note || note.querySelector('.rows-remove')) {
            return;
        }
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'rows-remove';
        button.title = 'Remove this row';
        button.textContent = '×';
        note.prepend(button);
    };

    const addRow = (table) => {
        const body = table.tBodies[0];
        const last = body.rows[body.rows.length - 1];
        const row = last.cloneNode(true);
        const number = body.rows.length;
        row.querySelectorAll('[id]').forEach((node) => {
            node.id = `${table.id.replace(/_rows$/, '')}_${number}_${node.name || 'cell'}`;
        });
        empty(row);
        body.appendChild(row);
        const first = row.querySelector('input, select, textarea');
        if (first) {
            first.focus();
        }
    };

    document.addEventListener('click', (event) => {
        const add = event.target.closest('.rows-add');
        if (add) {
            event.preventDefault();
            addRow(document.getElementById(add.dataset.rows));
            return;
        }
        const remove = event.target.closest('.rows-remove');
        if (remove) {
            event.preventDefault();
            const row = remove.closest('tr');
            if (row.parentNode.rows.length > 1) {
                row.remove();
            } else {
                empty(row);
            }
        }
    });

    const ready = () => {
        document.querySelectorAll('.rows-widget').forEach((widget) => {
            widget.querySelectorAll('tbody tr').forEach(addRemoveButton);
            widget.querySelectorAll('.rows-add').forEach((button) => { button.hidden = false; });
        });
    };
    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', ready);
    } else {
        ready();
    }
}
